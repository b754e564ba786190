// The login form and the first-user form: the only pages the server renders itself (pages own the rest).
// Styled by /assets/app.css; no script.
import { html, type SafeHtml } from '../html.js';

function shell(title: string, body: SafeHtml): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${title} · taskmill</title>
<link rel="stylesheet" href="/assets/app.css">
</head>
<body class="login-body">
<main class="login">
<h1>taskmill</h1>
${body}
</main>
</body>
</html>
`.toString();
}

export function loginPage(o: { csrf: string; next: string; name?: string; error?: string }): string {
  return shell(
    'Log in',
    html`<form method="post" action="/login" class="login-form">
<input type="hidden" name="_csrf" value="${o.csrf}">
<input type="hidden" name="next" value="${o.next}">
${o.error ? html`<p class="error" role="alert">${o.error}</p>` : ''}
<label>Name <input name="name" autocomplete="username" required value="${o.name ?? ''}" autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Log in</button>
</form>
<p class="hint">No account? An administrator adds one with <code>taskmill user add NAME --role viewer</code>.</p>`,
  );
}

export function setupPage(o: { csrf: string; error?: string; name?: string }): string {
  return shell(
    'Create the first user',
    html`<p>You are logged in with the one-time link. Create an administrator now: the link works only once, and
the page cannot be reached without a user or a token.</p>
<form method="post" action="/setup" class="login-form">
<input type="hidden" name="_csrf" value="${o.csrf}">
${o.error ? html`<p class="error" role="alert">${o.error}</p>` : ''}
<label>Name <input name="name" autocomplete="username" required value="${o.name ?? ''}"></label>
<label>Password <input name="password" type="password" autocomplete="new-password" minlength="8" required></label>
<label>Repeat it <input name="repeat" type="password" autocomplete="new-password" minlength="8" required></label>
<button type="submit">Create the administrator</button>
</form>
<p class="hint">Or later, from a shell: <code>taskmill user add NAME --role admin</code>. <a href="/">Skip for now</a>.</p>`,
  );
}

export function messagePage(title: string, message: string, link: { href: string; text: string } = { href: '/login', text: 'Log in' }): string {
  return shell(title, html`<p>${message}</p><p><a href="${link.href}">${link.text}</a></p>`);
}
