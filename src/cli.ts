#!/usr/bin/env node
/**
 * livemig-exporter: `livemig-exporter [--config FILE]` runs the exporter,
 * `livemig-exporter check-config FILE` validates a config and exits, `check-web-config FILE`
 * a web config file (--web.config.file).
 * Exit codes: 0 ok, 1 runtime failure, 2 bad config or flags.
 */
import { Command, Option } from 'commander';
import { defaultConfig, readConfigFile, type LoadedConfig } from './config/load.js';
import { errorMessage, LivemigError } from './errors.js';
import { createLogger, LOG_FORMATS, type LogFormat, type LogLevel } from './log.js';
import { parseListenAddress } from './server/listen-address.js';
import { readWebConfig } from './server/web-security.js';
import { versionText } from './version.js';
import { SCENARIO_NAMES, type ScenarioName } from './lab/scenarios/types.js';

const EXIT_RUNTIME = 1;
const EXIT_USAGE = 2;

interface RunFlags {
  config?: string;
  'web.listenAddress': string;
  'web.telemetryPath': string;
  'web.maxConnections': string;
  'web.config.file'?: string;
  'log.level': LogLevel;
  'log.format': LogFormat;
}

function fail(err: unknown): never {
  const usage = err instanceof LivemigError && ['LME_CONFIG_READ', 'LME_CONFIG_YAML', 'LME_CONFIG_INVALID', 'LME_FLAG_INVALID', 'LME_WEB_CONFIG_READ', 'LME_WEB_CONFIG'].includes(err.code);
  // One line per problem (a config file's are all listed), each naming the file.
  for (const line of errorMessage(err).split('\n')) console.error(`livemig-exporter: ${line}`);
  process.exit(usage ? EXIT_USAGE : EXIT_RUNTIME);
}

export function buildProgram(): Command {
  const program = new Command('livemig-exporter')
    .description('Prometheus exporter for live VM migration: duration, transferred bytes and downtime of QEMU/KVM migrations.')
    .version(versionText(), '--version', 'print the version, the git revision and the Node.js version, and exit')
    .option('--config <file>', 'YAML config file (without it: defaults for a compute host, watching local libvirt domains)')
    .option('--web.listen-address <address>', 'address to serve /metrics and the API on', ':10027')
    .option('--web.telemetry-path <path>', 'path under which to expose metrics', '/metrics')
    .option('--web.config.file <file>', 'web config file (Prometheus exporter-toolkit format): TLS, basic auth users and response headers for every endpoint; re-read on change')
    .option('--web.max-connections <n>', 'open HTTP connections at most; past it the oldest idle one is closed so that a new scrape is served', '512')
    .addOption(new Option('--log.level <level>', 'only log messages with this severity or above').choices(['debug', 'info', 'warn', 'error']).default('info'))
    .addOption(new Option('--log.format <format>', 'log format').choices([...LOG_FORMATS]).default('json'))
    .showHelpAfterError()
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE))
    .action(async (flags: RunFlags) => {
      try {
        const listen = parseListenAddress(flags['web.listenAddress']);
        const telemetryPath = flags['web.telemetryPath'];
        if (!telemetryPath.startsWith('/')) throw new LivemigError('LME_FLAG_INVALID', ['--web.telemetry-path', `"${telemetryPath}" must start with /`]);
        const maxConnections = Number(flags['web.maxConnections']);
        if (!Number.isInteger(maxConnections) || maxConnections < 1) throw new LivemigError('LME_FLAG_INVALID', ['--web.max-connections', `"${flags['web.maxConnections']}" must be a whole number of at least 1`]);
        const webConfigFile = flags['web.config.file'] ?? null;
        // Checked before the config, so that a bad file exits 2 naming it and its key.
        if (webConfigFile) readWebConfig(webConfigFile);
        const loaded: LoadedConfig = flags.config ? await readConfigFile(flags.config) : { config: defaultConfig(), warnings: [] };
        const { config } = loaded;
        const logger = createLogger(flags['log.level'], flags['log.format']);
        for (const warning of loaded.warnings) logger.warn({ code: warning.code, file: flags.config }, warning.message);
        const { runExporter } = await import('./exporter.js');
        await runExporter({ config, configFile: flags.config ?? null, listen, telemetryPath, logger, maxConnections, webConfigFile });
        // Stopped on a signal: a child process or socket a source could not close must not keep us alive.
        logger.flush();
        process.exit(0);
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('check-config')
    .description('validate a config file and exit: 0 when valid (warnings, e.g. a host no hosts entry declares, on stderr), 2 listing every problem with its file:line:column and key path')
    .argument('<file>', 'YAML config file')
    .action(async (file: string) => {
      try {
        const { config, warnings } = await readConfigFile(file);
        const monitors = config.vms.reduce((n, vm) => n + vm.monitors.length, 0);
        // Warnings do not make a config invalid: exit 0, each on stderr.
        for (const warning of warnings) console.error(`livemig-exporter: warning: ${warning.message}`);
        const warned = warnings.length ? `, ${warnings.length} warning${warnings.length > 1 ? 's' : ''}` : '';
        process.stdout.write(`${file}: valid (${config.vms.length} VMs, ${monitors} QEMU monitors, libvirt ${config.libvirt.transport}, discover ${config.libvirt.discover}${warned})\n`);
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('check-web-config')
    .description('validate a web config file (--web.config.file) and the TLS files it names, and exit: 0 when valid, 2 with the file, key and problem when not')
    .argument('<file>', 'web config YAML file')
    .action((file: string) => {
      try {
        const { config } = readWebConfig(file);
        process.stdout.write(`${file}: valid (TLS ${config.tls ? `on, client_auth_type ${config.tls.clientAuth}` : 'off'}, ${config.users.size} basic auth users, ${config.headers.length} headers)\n`);
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('lab')
    .description('the migration lab: real (or, with --engine sim, SIMULATED) hybrid migrations on this machine, watched by the exporter, reported beside the study\'s tables')
    .addOption(new Option('--scenario <name>', 'what to run').choices([...SCENARIO_NAMES]).default('stress-sweep'))
    .addOption(
      new Option('--engine <engine>', 'qemu: network namespaces and real QEMU (root); libvirt: libvirt-driven migrations between two private libvirt daemons (root; stress-sweep, flavors, demo); sim: the SIMULATED model; auto: qemu where it can run, else sim')
        .choices(['qemu', 'libvirt', 'sim', 'auto'])
        .default('auto'),
    )
    .option('--bandwidth <rate>', 'rate of the migration link, in tc syntax', '1gbit')
    .option('--out <dir>', 'directory for the CSV and JSON results', 'lab-results')
    .option('--count <n>', 'demo: stop after this many migrations (default: until Ctrl-C); outage: this many VMs, each on its own address, each migrated once (default 1); outage-causes: this many runs of each cause (default 1)')
    .option('--steps <mib,...>', 'stress-sweep: stressed memory per step, MiB (default 64,128,192,256)')
    .option('--linger <seconds>', 'keep the exporter serving /metrics and /api/v1/migrations this long after the report (a last scrape by Prometheus); Ctrl-C ends it early, exit 0')
    .option('--cleanup', 'only remove what killed lab runs left (QEMU processes, namespaces, temp dirs), then exit')
    .addHelpText('after', '\nThe exporter serves /metrics on --web.listen-address (default :10027) while the lab runs; its log level is --log.level (default warn here).')
    .action(async (flags: LabFlags, command: Command) => {
      try {
        const { runLab, cleanupLeftovers } = await import('./lab/command.js');
        if (flags.cleanup) {
          const removed = await cleanupLeftovers();
          process.stdout.write(removed.length ? `${removed.map((r) => `removed ${r}`).join('\n')}\n` : 'nothing left over\n');
          process.exit(0);
        }
        await runLab({
          scenario: flags.scenario,
          engine: flags.engine,
          bandwidth: flags.bandwidth,
          out: flags.out,
          listen: parseListenAddress(String(command.optsWithGlobals()['web.listenAddress'])),
          logLevel: command.parent?.getOptionValueSource('log.level') === 'default' ? 'warn' : (command.optsWithGlobals()['log.level'] as LogLevel),
          ...(flags.count !== undefined ? { count: positiveInt('--count', flags.count) } : {}),
          ...(flags.steps !== undefined ? { steps: flags.steps.split(',').map((s) => positiveInt('--steps', s)) } : {}),
          ...(flags.linger !== undefined ? { lingerSeconds: positiveInt('--linger', flags.linger) } : {}),
        });
        process.exit(0);
      } catch (err) {
        fail(err);
      }
    });

  return program;
}

interface LabFlags {
  scenario: ScenarioName;
  engine: 'qemu' | 'libvirt' | 'sim' | 'auto';
  bandwidth: string;
  out: string;
  count?: string;
  steps?: string;
  linger?: string;
  cleanup?: boolean;
}

function positiveInt(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) throw new LivemigError('LME_FLAG_INVALID', [flag, `"${text}" is not a positive whole number`]);
  return value;
}

await buildProgram().parseAsync(process.argv);
