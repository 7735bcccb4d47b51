/**
 * docker-compose.yml with the real docker-compose (Debian package; no Docker engine here):
 * `docker-compose config` accepts it, and what it mounts into the containers exists in the tree.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { missingTools, requireEnvironment } from '../helpers/env.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const run = promisify(execFile);

interface Service {
  build?: { context: string };
  image?: string;
  ports?: ({ published: number | string; target: number } | string)[];
  volumes?: ({ type: string; source: string; target: string; read_only?: boolean } | string)[];
  user?: string;
}

describe.runIf(requireEnvironment(missingTools('docker-compose')))('docker-compose.yml (real docker-compose config)', () => {
  it('is valid, with the exporter, Prometheus, Alertmanager and Grafana wired to the files in the tree', async () => {
    const { stdout } = await run('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: ROOT });
    const config = parse(stdout) as { services: Record<string, Service> };
    expect(Object.keys(config.services).sort()).toEqual(['alertmanager', 'exporter', 'grafana', 'prometheus']);
    expect(config.services.exporter?.build?.context).toBe(ROOT.replace(/\/$/, ''));

    const ports = Object.fromEntries(
      Object.entries(config.services).map(([name, s]) => [name, (s.ports ?? []).map((p) => (typeof p === 'string' ? p : `${p.published}:${p.target}`))]),
    );
    expect(ports).toEqual({ exporter: ['10027:10027'], prometheus: ['9090:9090'], alertmanager: ['9093:9093'], grafana: ['3000:3000'] });

    // Every bind mount's source exists, and the containers get what they read. docker-compose 1.29
    // prints volumes as SOURCE:TARGET:MODE; a bind mount's source is an absolute path.
    const binds = Object.entries(config.services).flatMap(([service, s]) =>
      (s.volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':') : [v.source, v.target])).filter((p) => p[0]?.startsWith('/')).map((p) => ({ service, source: p[0] as string, target: p[1] as string })),
    );
    expect(binds.length).toBeGreaterThanOrEqual(4);
    for (const bind of binds) expect(existsSync(bind.source), bind.source).toBe(true);
    const target = (service: string, path: string) => binds.find((b) => b.service === service && b.target === path)?.source;
    expect(target('prometheus', '/etc/prometheus')).toBe(join(ROOT, 'prometheus'));
    expect(target('alertmanager', '/etc/alertmanager/alertmanager.yml')).toBe(join(ROOT, 'alertmanager/alertmanager.yml'));
    expect(target('grafana', '/etc/grafana/provisioning')).toBe(join(ROOT, 'grafana/provisioning'));
    expect(target('grafana', '/var/lib/grafana/dashboards/livemig')).toBe(join(ROOT, 'grafana/dashboards'));

    // Prometheus in the stack scrapes the exporter service and sends to the alertmanager service.
    const prom = parse(readFileSync(join(ROOT, 'prometheus/prometheus.yml'), 'utf8')) as {
      scrape_configs: { job_name: string; static_configs?: { targets: string[] }[] }[];
      alerting: { alertmanagers: { static_configs: { targets: string[] }[] }[] };
    };
    expect(prom.scrape_configs.find((j) => j.job_name === 'livemig')?.static_configs?.[0]?.targets).toEqual(['exporter:10027']);
    expect(prom.alerting.alertmanagers[0]?.static_configs[0]?.targets).toEqual(['alertmanager:9093']);
    // Grafana's provisioning points at the stack's Prometheus and at the mounted dashboards.
    const ds = parse(readFileSync(join(ROOT, 'grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as { datasources: { url: string; type: string }[] };
    expect(ds.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
    const dash = parse(readFileSync(join(ROOT, 'grafana/provisioning/dashboards/livemig.yml'), 'utf8')) as { providers: { options: { path: string } }[] };
    expect(dash.providers[0]?.options.path).toBe('/var/lib/grafana/dashboards/livemig');
  });

  it('rejects a broken compose file (the check can fail)', async () => {
    const broken = join(ROOT, 'docker-compose.yml');
    const text = readFileSync(broken, 'utf8').replace('ports:\n      - "10027:10027"', 'ports: 10027');
    expect(text).not.toBe(readFileSync(broken, 'utf8'));
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = execFile('docker-compose', ['-f', '-', 'config', '-q'], { cwd: ROOT }, (error, _stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stderr }),
      );
      child.stdin?.end(text);
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/ports/);
  });
});

describe('Dockerfile', () => {
  it('is multi-stage on node:20, runs as a non-root user, and ships only the packaged exporter, without virsh', () => {
    const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    expect(text.match(/^FROM node:20\S*/gm)?.length).toBe(2);
    expect(text).toMatch(/^USER node$/m);
    // The build stage makes the compute host's tarball (test/integration/packaging.test.ts
    // replays it); the runtime stage gets that alone and installs it.
    const copies = [...text.matchAll(/^COPY --from=build (\S+)/gm)].map((m) => m[1]);
    expect(copies).toEqual(['/pkg/']);
    expect(text).toMatch(/^ENTRYPOINT \["livemig-exporter"\]$/m);
    const runtime = (text.split(/^FROM /m)[2] as string).split('\n').filter((l) => !l.startsWith('#')).join('\n');
    expect(runtime).toMatch(/apt-get install -y --no-install-recommends fping \\$/m);
    expect(runtime).not.toMatch(/libvirt|virsh/);
    // The agent's docker run: libvirt's read-only socket and nova's log, mounted read-only.
    expect(text).toContain('#     -v /run/libvirt/libvirt-sock-ro:/run/libvirt/libvirt-sock-ro:ro \\\n#     -v /var/log/nova:/var/log/nova:ro \\\n');
  });
});
