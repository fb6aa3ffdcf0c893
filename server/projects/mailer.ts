import nodemailer, { type Transporter } from 'nodemailer';
import type { HubConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import { HubError } from '../errors.js';

/** The mail could not be handed to the SMTP server; whatever it was for was undone. */
export class MailFailed extends HubError {
  constructor(to: string, detail: string) {
    super('MAIL_FAILED', 502, `The email to ${to} could not be sent, so nothing was changed. Please try again later, or ask the hub's administrator to check the mail (SMTP) settings.`, detail);
  }
}

export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
}

/** Sends the hub's mail (invitations, reset links). */
export interface Mailer {
  /** Resolves once the SMTP server accepted the message; rejects with MailFailed. */
  send(mail: OutgoingMail): Promise<void>;
  close(): void;
}

/** nodemailer over SMTP, configured by the smtp* keys. STARTTLS, when chosen, is required, never optional. */
export class SmtpMailer implements Mailer {
  private readonly transport: Transporter;

  constructor(
    private readonly config: HubConfig,
    private readonly log: Logger,
  ) {
    const timeoutMs = config.smtpTimeoutS * 1000;
    this.transport = nodemailer.createTransport({
      host: config.smtpHost,
      port: config.smtpPort,
      secure: config.smtpSecurity === 'tls',
      requireTLS: config.smtpSecurity === 'starttls',
      ignoreTLS: config.smtpSecurity === 'none',
      ...(config.smtpUser ? { auth: { user: config.smtpUser, pass: config.smtpPassword ?? '' } } : {}),
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
    });
  }

  async send(mail: OutgoingMail): Promise<void> {
    try {
      const info = (await this.transport.sendMail({ from: this.config.mailFrom, to: mail.to, subject: mail.subject, text: mail.text })) as { messageId?: string };
      this.log.info({ to: mail.to, subject: mail.subject, messageId: info.messageId }, 'mail sent');
    } catch (err) {
      const e = err as { code?: string; message?: string };
      this.log.error({ to: mail.to, code: e.code, smtpHost: this.config.smtpHost, smtpPort: this.config.smtpPort, err: e.message }, 'mail could not be sent');
      throw new MailFailed(mail.to, `${e.code ?? ''} ${e.message ?? String(err)}`.trim());
    }
  }

  close(): void {
    this.transport.close();
  }
}
