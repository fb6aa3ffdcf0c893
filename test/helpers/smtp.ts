import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  from: string;
  to: string[];
  /** The raw message (headers and body) as the hub sent it. */
  raw: string;
}

/** A real SMTP server (npm smtp-server) on 127.0.0.1, keeping every message it accepts. */
export class TestSmtp {
  readonly mails: ReceivedMail[] = [];
  private readonly waiters: (() => void)[] = [];
  private server: SMTPServer | undefined;
  port = 0;
  /** While set, every message is refused with this SMTP reply (a mail server that says no). */
  refuse: string | undefined;

  async start(): Promise<void> {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          if (this.refuse) return callback(Object.assign(new Error(this.refuse), { responseCode: 554 }));
          this.mails.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks).toString('utf8'),
          });
          callback();
          for (const w of this.waiters.splice(0)) w();
        });
      },
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.server.address() as AddressInfo).port;
  }

  /** Mails to this address so far. */
  to(address: string): ReceivedMail[] {
    return this.mails.filter((m) => m.to.includes(address));
  }

  /** Waits until `count` mails went to `address` (or fails after limitMs). */
  async waitFor(address: string, count = 1, limitMs = 15_000): Promise<ReceivedMail[]> {
    const deadline = Date.now() + limitMs;
    while (this.to(address).length < count) {
      if (Date.now() > deadline) throw new Error(`no mail #${count} to ${address}; got ${this.mails.map((m) => m.to.join(',')).join('; ')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.to(address);
  }

  async close(): Promise<void> {
    if (this.server) await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}

/** The invitation link in a mail (quoted-printable soft breaks undone). */
export function linkIn(mail: ReceivedMail): string {
  const body = mail.raw.replace(/=\r?\n/g, '').replace(/=3D/g, '=');
  const m = /https?:\/\/[^\s]+\/hub\/invite\?token=[A-Za-z0-9_-]+/.exec(body);
  if (!m) throw new Error(`no link in mail:\n${mail.raw}`);
  return m[0];
}
