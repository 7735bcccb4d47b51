#!/usr/bin/env node
/**
 * livemig-exporter: `livemig-exporter [--config FILE]` runs the exporter,
 * `livemig-exporter check-config FILE` validates a config and exits.
 * Exit codes: 0 ok, 1 runtime failure, 2 bad config or flags.
 */
import { Command, Option } from 'commander';
import { defaultConfig, loadConfigFile } from './config/load.js';
import { errorMessage, LivemigError } from './errors.js';
import { createLogger, type LogFormat, type LogLevel } from './log.js';
import { parseListenAddress } from './server/listen-address.js';
import { VERSION } from './version.js';

const EXIT_RUNTIME = 1;
const EXIT_USAGE = 2;

interface RunFlags {
  config?: string;
  'web.listenAddress': string;
  'web.telemetryPath': string;
  'log.level': LogLevel;
  'log.format': LogFormat;
}

function fail(err: unknown): never {
  const usage = err instanceof LivemigError && ['LME_CONFIG_READ', 'LME_CONFIG_YAML', 'LME_CONFIG_INVALID', 'LME_FLAG_INVALID'].includes(err.code);
  console.error(`livemig-exporter: ${errorMessage(err)}`);
  process.exit(usage ? EXIT_USAGE : EXIT_RUNTIME);
}

export function buildProgram(): Command {
  const program = new Command('livemig-exporter')
    .description('Prometheus exporter for live VM migration: duration, transferred bytes and downtime of QEMU/KVM migrations.')
    .version(VERSION, '--version')
    .option('--config <file>', 'YAML config file (without it: defaults for a compute host, watching local libvirt domains)')
    .option('--web.listen-address <address>', 'address to serve /metrics and the API on', ':10027')
    .option('--web.telemetry-path <path>', 'path under which to expose metrics', '/metrics')
    .addOption(new Option('--log.level <level>', 'only log messages with this severity or above').choices(['debug', 'info', 'warn', 'error']).default('info'))
    .addOption(new Option('--log.format <format>', 'log format').choices(['json', 'pretty']).default('json'))
    .showHelpAfterError()
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE))
    .action(async (flags: RunFlags) => {
      try {
        const listen = parseListenAddress(flags['web.listenAddress']);
        const telemetryPath = flags['web.telemetryPath'];
        if (!telemetryPath.startsWith('/')) throw new LivemigError('LME_FLAG_INVALID', ['--web.telemetry-path', `"${telemetryPath}" must start with /`]);
        const config = flags.config ? await loadConfigFile(flags.config) : defaultConfig();
        const logger = createLogger(flags['log.level'], flags['log.format']);
        const { runExporter } = await import('./exporter.js');
        await runExporter({ config, configFile: flags.config ?? null, listen, telemetryPath, logger });
        // Stopped on a signal: a child process or socket a source could not close must not keep us alive.
        logger.flush();
        process.exit(0);
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('check-config')
    .description('validate a config file and exit: 0 when valid, 2 with the file, key path and problem when not')
    .argument('<file>', 'YAML config file')
    .action(async (file: string) => {
      try {
        const config = await loadConfigFile(file);
        const monitors = config.vms.reduce((n, vm) => n + vm.monitors.length, 0);
        process.stdout.write(`${file}: valid (${config.vms.length} VMs, ${monitors} QEMU monitors, libvirt discovery ${config.libvirt.discover})\n`);
      } catch (err) {
        fail(err);
      }
    });

  return program;
}

await buildProgram().parseAsync(process.argv);
