import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { HostRegistry } from '../../src/hosts/registry.js';
import { SshHost } from '../../src/hosts/ssh.js';

const CONFIG = `
hosts:
  - name: lab-src
    netns: lmenet-1-src
    interfaces: ['mig*']
  - name: compute-7
    ssh: { address: 10.0.0.7, user: nova, identity_file: /etc/livemig/id_ed25519, known_hosts: /etc/livemig/known_hosts, keepalive_interval: 5s, connect_timeout: 3s }
    interfaces: [bond0, 'eth[01]']
    netdev_path: /host/proc/net/dev
netdev: { period: 2s, migrating_period: 50ms }
`;

describe('hosts config and registry', () => {
  it('reads hosts and netdev with their defaults', () => {
    const config = parseConfigText(CONFIG, 'c.yml');
    expect(config.netdev).toEqual({ periodMs: 2000, migratingPeriodMs: 50 });
    expect(config.hosts[0]).toEqual({ name: 'lab-src', netns: 'lmenet-1-src', ssh: null, interfaces: ['mig*'], netdevPath: '/proc/net/dev' });
    expect(config.hosts[1]?.ssh).toEqual({
      address: '10.0.0.7',
      port: 22,
      user: 'nova',
      identityFile: '/etc/livemig/id_ed25519',
      knownHosts: '/etc/livemig/known_hosts',
      agent: false,
      keepaliveIntervalMs: 5000,
      connectTimeoutMs: 3000,
    });
    expect(parseConfigText('{}', 'empty.yml').netdev).toEqual({ periodMs: 1000, migratingPeriodMs: 100 });
  });

  it('refuses a host that is both netns and ssh, duplicate names, and bad names, naming the key', () => {
    expect(() => parseConfigText('hosts: [{ name: a, netns: x, ssh: { address: h, user: u } }]', 'c.yml')).toThrow(/hosts\[0\].*either a network namespace/);
    expect(() => parseConfigText('hosts: [{ name: a }, { name: a }]', 'c.yml')).toThrow(/duplicate host name "a"/);
    expect(() => parseConfigText('hosts: [{ name: "a b" }]', 'c.yml')).toThrow(/hosts\[0\]\.name/);
    expect(() => parseConfigText('hosts: [{ name: a, netns: "x;reboot" }]', 'c.yml')).toThrow(/hosts\[0\]\.netns/);
    expect(() => parseConfigText('hosts: [{ name: a, ssh: { address: h, user: "-oProxyCommand=x" } }]', 'c.yml')).toThrow(/hosts\[0\]\.ssh\.user/);
  });

  it('builds local, netns and ssh hosts; a name not declared is this machine', async () => {
    const registry = new HostRegistry({ hosts: parseConfigText(CONFIG, 'c.yml').hosts });
    expect(registry.get('lab-src').kind).toBe('netns');
    expect(registry.get('compute-7')).toBeInstanceOf(SshHost);
    expect(registry.get('compute-7').up).toBe(false);
    const local = registry.get('hv-undeclared');
    expect(local.kind).toBe('local');
    expect(local.up).toBe(true);
    expect((await local.exec(['printf', '%s', 'a b'])).stdout.toString()).toBe('a b');
    expect(registry.declared().map((d) => d.host.name)).toEqual(['lab-src', 'compute-7']);
    await registry.close();
  });

  it('refuses an ssh host with neither a key nor the agent, and the agent without SSH_AUTH_SOCK', () => {
    const noKey = parseConfigText('hosts: [{ name: a, ssh: { address: h, user: u } }]', 'c.yml').hosts;
    expect(() => new HostRegistry({ hosts: noKey })).toThrow(/LME|host a: ssh needs identity_file or agent: true/);
    const agent = parseConfigText('hosts: [{ name: a, ssh: { address: h, user: u, agent: true } }]', 'c.yml').hosts;
    expect(() => new HostRegistry({ hosts: agent })).toThrow(/SSH_AUTH_SOCK is not set/);
    expect(new HostRegistry({ hosts: agent, agentSocket: '/run/agent.sock' }).get('a').kind).toBe('ssh');
  });
});
