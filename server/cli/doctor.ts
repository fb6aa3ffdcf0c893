import { CliError, type CliCommand } from './command.js';
import { hubConfig, type GlobalOptions } from './config.js';
import { checkCertificates, checkClock, checkDataDir, checkDisk, checkDocker, checkNginx, checkPorts, checkRedis, checkVenv, type CheckResult, type DoctorInputs } from './doctor-checks.js';
import { REPO_ROOT } from './repo-root.js';

const MARK: Record<CheckResult['status'], string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' };

/** `oerhub doctor`: one line per check of what the hub depends on, with the fix; exit 1 if any fails. */
export const doctorCommand: CliCommand = {
  register(program, context) {
    program
      .command('doctor')
      .description('check the engine, Redis, images, nginx, certificates, clock, disk, venv and ports; say what to fix')
      .option('--nginx-conf <file>', 'nginx main config to test with `nginx -t -c FILE` (its ssl_certificate files are checked too)')
      .option('--cert <file>', 'a TLS certificate to check (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
      .action(async (opts: { nginxConf?: string; cert: string[] }) => {
        const config = hubConfig(program.opts<GlobalOptions>(), context);
        const inputs: DoctorInputs = { config, nginxConf: opts.nginxConf, certs: opts.cert, repoRoot: REPO_ROOT };
        const checks: (() => Promise<CheckResult[]> | CheckResult[])[] = [
          () => checkDataDir(inputs),
          () => checkDocker(inputs),
          () => checkRedis(inputs),
          () => checkVenv(inputs),
          () => checkNginx(inputs),
          () => checkCertificates(inputs),
          () => checkClock(inputs),
          () => checkDisk(inputs),
          () => checkPorts(inputs),
        ];
        const results: CheckResult[] = [];
        for (const check of checks) {
          let lines: CheckResult[];
          try {
            lines = await check();
          } catch (err) {
            // A check that breaks is a failure to look at, not a crash of the whole doctor.
            lines = [{ name: 'doctor', status: 'fail', message: `a check failed to run: ${(err as Error).message}` }];
          }
          for (const r of lines) {
            context.out(`${MARK[r.status]}  ${r.name}: ${r.message}${r.fix ? ` — fix: ${r.fix}` : ''}`);
            results.push(r);
          }
        }
        const failed = results.filter((r) => r.status === 'fail').length;
        const warned = results.filter((r) => r.status === 'warn').length;
        context.out(`${results.length} checks: ${failed} failed, ${warned} warnings`);
        if (failed) throw new CliError(`${failed} check${failed === 1 ? '' : 's'} failed`);
      });
  },
};
