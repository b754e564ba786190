// The webhook channel: a JSON POST signed with HMAC-SHA256. The signature covers `${timestamp}.${body}`,
// so a receiver that checks it and refuses old timestamps cannot be fed a replayed request.
//
//   X-Taskmill-Timestamp: 1764640000                (Unix seconds when this attempt was sent)
//   X-Taskmill-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>
//   X-Taskmill-Delivery:  notification-42           (the same on every retry of one message)
import { createHmac } from 'node:crypto';
import { ConfigError } from '../model/errors.js';
import type { Notification } from '../model/notification.js';
import type { Channel, Message, WebhookConfig } from './channels.js';
import { type RenderOptions, renderWebhook } from './render.js';

const REQUEST_TIMEOUT_MS = 15_000;

export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export class WebhookChannel implements Channel {
  readonly name = 'webhook' as const;
  private readonly secret: string;

  constructor(
    private readonly config: WebhookConfig,
    private readonly render: RenderOptions,
    env: Record<string, string | undefined> = process.env,
  ) {
    const secret = config.secret ?? env.TASKMILL_WEBHOOK_SECRET;
    if (!secret || secret.length < 16) {
      throw new ConfigError(
        'notify.webhook needs a secret of at least 16 characters to sign its requests: set "secret" or TASKMILL_WEBHOOK_SECRET.',
      );
    }
    this.secret = secret;
  }

  recipients(_n: Notification): null {
    return null;
  }

  async send(message: Message): Promise<void> {
    const { id, body } = renderWebhook(message, this.render);
    const text = JSON.stringify(body);
    const timestamp = String(Math.floor(Date.now() / 1000));
    const res = await fetch(this.config.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'taskmill-webhook',
        'x-taskmill-timestamp': timestamp,
        'x-taskmill-signature': signWebhook(this.secret, timestamp, text),
        'x-taskmill-delivery': id,
      },
      body: text,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      redirect: 'error',
    });
    // The body is read (and dropped) so the connection can be reused.
    await res.arrayBuffer().catch(() => undefined);
    if (res.status < 200 || res.status > 299) throw new Error(`the webhook ${shown(this.config.url)} answered ${res.status}`);
  }

  close(): void {}
}

/** The URL without credentials or query (which may carry a token), for messages and logs. */
function shown(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}
