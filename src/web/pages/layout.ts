// The page shell: head (CSP-friendly: one stylesheet, one external script), navigation, the daemon
// notice, flash message and the page's own content; and the small building blocks every page shares.
import { html, type SafeHtml } from '../html.js';
import type { Principal } from '../types.js';

export type Nav = 'overview' | 'tasks' | 'add' | 'schedules' | 'daemon' | null;

const NAV: { key: Exclude<Nav, null>; href: string; label: string }[] = [
  { key: 'overview', href: '/', label: 'Overview' },
  { key: 'tasks', href: '/tasks', label: 'Tasks' },
  { key: 'add', href: '/tasks/new', label: 'Add task' },
  { key: 'schedules', href: '/schedules', label: 'Schedules' },
  { key: 'daemon', href: '/daemon', label: 'Daemon' },
];

export interface Flash {
  kind: 'ok' | 'error';
  text: string;
}

export interface Shell {
  title: string;
  nav: Nav;
  principal: Principal;
  csrf: string;
  notice: SafeHtml;
  flash: Flash | null;
  body: SafeHtml;
}

export function layout(s: Shell): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="csrf-token" content="${s.csrf}">
<title>${s.title} · taskmill</title>
<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/assets/app.css">
<script src="/assets/app.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <a class="brand" href="/"><img src="/assets/favicon.svg" alt="" width="20" height="20">taskmill</a>
  <nav aria-label="Main">
    ${NAV.map((n) => html`<a href="${n.href}"${n.key === s.nav ? html` aria-current="page"` : ''}>${n.label}</a>`)}
  </nav>
  <div class="who">
    <span title="${s.principal.kind === 'token' ? 'signed in with a token' : 'signed in'}">${s.principal.name} <span class="role">${s.principal.role}</span></span>
    ${s.principal.kind === 'session' ? html`<form method="post" action="/logout" class="inline"><input type="hidden" name="_csrf" value="${s.csrf}"><button type="submit" class="link">Log out</button></form>` : ''}
  </div>
</header>
${live('notice', s.notice)}
<main id="main">
${s.flash ? html`<p class="flash flash-${s.flash.kind}" role="status">${s.flash.text}</p>` : ''}
${s.body}
</main>
</body>
</html>`;
}

/** A part of a page the script refreshes on its own (see app.js): the same markup, fetched again. */
export function live(id: string, content: SafeHtml): SafeHtml {
  return html`<div data-live="${id}" aria-live="polite">${content}</div>`;
}

/** The hidden CSRF field every form posts. */
export function csrfField(csrf: string): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${csrf}">`;
}

/** Why a viewer's control is disabled. */
export const VIEWER_REASON = 'Your role is viewer: only an admin can change tasks and schedules.';

/**
 * A one-button form (POST, CSRF, redirect back to `back`). For a viewer the button is disabled,
 * with the reason as its title.
 */
export function actionButton(o: {
  action: string;
  label: string;
  csrf: string;
  principal: Principal;
  back?: string;
  kind?: 'primary' | 'danger' | 'plain';
  confirm?: string;
  disabledReason?: string | null;
  fields?: Record<string, string>;
}): SafeHtml {
  const reason = o.principal.role !== 'admin' ? VIEWER_REASON : (o.disabledReason ?? null);
  return html`<form method="post" action="${o.action}" class="inline"${o.confirm ? html` data-confirm="${o.confirm}"` : ''}>${csrfField(o.csrf)}${
    o.back ? html`<input type="hidden" name="back" value="${o.back}">` : ''
  }${Object.entries(o.fields ?? {}).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}<button type="submit" class="btn ${o.kind ?? 'plain'}"${
    reason ? html` disabled title="${reason}"` : ''
  }>${o.label}</button></form>`;
}

/** A page's heading row: title and actions on the right. */
export function pageHead(title: string | SafeHtml, actions: SafeHtml = html``, sub: SafeHtml = html``): SafeHtml {
  return html`<div class="page-head"><div><h1>${title}</h1>${sub}</div><div class="actions">${actions}</div></div>`;
}

/** Only paths of this site are followed back (never an absolute URL a link could smuggle in). */
export function safeBack(back: unknown, fallback: string): string {
  return typeof back === 'string' && back.startsWith('/') && !back.startsWith('//') && !back.includes('\\') ? back : fallback;
}
