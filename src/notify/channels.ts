// Which channels are configured, which of them a notification goes to, and to whom an e-mail goes:
// decided from the config alone (no SMTP or HTTP here), so the daemon can tell cheaply whether the
// Notifier module has anything to do.
import type { Config } from '../config/schema.js';
import type { ClaimedDelivery, Notification } from '../model/notification.js';

export type ChannelName = 'email' | 'webhook';

type NotifyConfig = Config['notify'];
export type EmailConfig = NonNullable<NotifyConfig['email']>;
export type WebhookConfig = NonNullable<NotifyConfig['webhook']>;

/** One message a channel sends: one notification, or a digest of several. */
export type Message =
  | { kind: 'single'; delivery: ClaimedDelivery }
  | { kind: 'digest'; deliveries: ClaimedDelivery[]; recipients: readonly string[] | null };

/** A channel delivers messages; `send` resolves once the other side accepted the message, and throws otherwise. */
export interface Channel {
  readonly name: ChannelName;
  /** Recipients of this delivery (e-mail), used to gather a digest per recipient list; null where there are none. */
  recipients(n: Notification): readonly string[] | null;
  send(message: Message): Promise<void>;
  close(): void;
}

export function notifyChannels(config: Pick<Config, 'notify'>): ChannelName[] {
  const names: ChannelName[] = [];
  if (config.notify.email) names.push('email');
  if (config.notify.webhook) names.push('webhook');
  return names;
}

/** The channels a notification goes to: a daemon alert to every channel; a failure unless its task is turned off there. */
export function routeFor(notify: NotifyConfig): (n: Notification) => ChannelName[] {
  return (n) => {
    const out: ChannelName[] = [];
    if (notify.email && (n.kind !== 'task_failed' || emailRecipients(notify.email, n.taskName) !== false)) out.push('email');
    if (notify.webhook && (n.kind !== 'task_failed' || lookup(notify.webhook.tasks, n.taskName) !== false)) out.push('webhook');
    return out;
  };
}

/** Who gets the e-mail of a task's failure: its override (a list, or false for none), else `to`. */
export function emailRecipients(email: EmailConfig, taskName: string | null): readonly string[] | false {
  const override = lookup(email.tasks, taskName);
  return override === undefined ? email.to : override;
}

/** The entry for a task name: an exact name first, then the longest matching pattern ("*" matches any run of characters). */
export function lookup<V>(entries: Record<string, V>, taskName: string | null): V | undefined {
  if (taskName === null) return undefined;
  const name = taskName.toLowerCase();
  let best: { length: number; value: V } | undefined;
  for (const [key, value] of Object.entries(entries)) {
    const pattern = key.toLowerCase();
    if (pattern === name) return value;
    if (!pattern.includes('*')) continue;
    const re = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`);
    if (re.test(name) && (!best || pattern.length > best.length)) best = { length: pattern.length, value };
  }
  return best?.value;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}
