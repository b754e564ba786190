// The e-mail channel: nodemailer over SMTP (smtp:// with STARTTLS when offered, smtps:// for TLS from
// the start). Credentials come from the URL or, when it has none, TASKMILL_SMTP_USER and
// TASKMILL_SMTP_PASSWORD; they are never logged.
import nodemailer, { type Transporter } from 'nodemailer';
import type { Notification } from '../model/notification.js';
import type { Channel, EmailConfig, Message } from './channels.js';
import { emailRecipients } from './channels.js';
import { type RenderOptions, renderMail } from './render.js';

/** Bounded waits, so a hung server fails the send well inside the deliverer's lease. */
const CONNECTION_TIMEOUT_MS = 10_000;
const SOCKET_TIMEOUT_MS = 30_000;

export class EmailChannel implements Channel {
  readonly name = 'email' as const;
  private readonly transport: Transporter;

  constructor(
    private readonly config: EmailConfig,
    private readonly render: RenderOptions,
    env: Record<string, string | undefined> = process.env,
  ) {
    const url = new URL(config.smtp);
    const secure = url.protocol === 'smtps:';
    const user = url.username ? decodeURIComponent(url.username) : env.TASKMILL_SMTP_USER;
    const pass = url.password ? decodeURIComponent(url.password) : env.TASKMILL_SMTP_PASSWORD;
    this.transport = nodemailer.createTransport({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port ? Number(url.port) : secure ? 465 : 587,
      secure,
      auth: user ? { user, pass } : undefined,
      connectionTimeout: CONNECTION_TIMEOUT_MS,
      greetingTimeout: CONNECTION_TIMEOUT_MS,
      socketTimeout: SOCKET_TIMEOUT_MS,
    });
  }

  /** A daemon alert goes to `to`; a failure to its task's recipients (an override, or `to`). */
  recipients(n: Notification): readonly string[] | null {
    if (n.kind !== 'task_failed') return this.config.to;
    const to = emailRecipients(this.config, n.taskName);
    return to === false ? null : to;
  }

  async send(message: Message): Promise<void> {
    const to = message.kind === 'digest' ? message.recipients : this.recipients(message.delivery.notification);
    if (!to || to.length === 0) return;
    const mail = renderMail(message, this.render);
    await this.transport.sendMail({ from: this.config.from, to: [...to], subject: mail.subject, text: mail.text, html: mail.html });
  }

  close(): void {
    this.transport.close();
  }
}
