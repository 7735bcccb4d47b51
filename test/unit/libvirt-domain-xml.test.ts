import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LivemigError } from '../../src/errors.js';
import { parseDomainXml } from '../../src/sources/libvirt/domain-xml.js';

const NOVA = readFileSync(new URL('../fixtures/libvirt-xml/nova-instance.domain.xml', import.meta.url), 'utf8');

describe('parseDomainXml', () => {
  it("takes the instance UUID, nova's name, flavor and project, and the interfaces' devices", () => {
    expect(parseDomainXml(NOVA, 'instance-0000002a')).toEqual({
      name: 'instance-0000002a',
      uuid: '0b5c7d3e-4f1a-4c2b-9e8d-7a6b5c4d3e2f',
      nova: { name: 'web-frontend-1', flavor: 'm1.large', project: 'web-team', projectUuid: '4a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d' },
      interfaces: [
        { device: 'tap2d3e4f5a-6b', mac: 'fa:16:3e:12:34:56' },
        { device: 'tap9a8b7c6d-5e', mac: 'fa:16:3e:65:43:21' },
      ],
    });
  });

  it("finds nova's metadata by its namespace, whatever the prefix", () => {
    const other = NOVA.replaceAll('nova:', 'n:').replace('xmlns:nova=', 'xmlns:n=');
    expect(parseDomainXml(other, 'x').nova).toMatchObject({ name: 'web-frontend-1', flavor: 'm1.large', project: 'web-team' });
    const foreign = NOVA.replace('http://openstack.org/xmlns/libvirt/nova/1.1', 'http://example.com/not-nova');
    expect(parseDomainXml(foreign, 'x').nova).toBeNull();
  });

  it('a domain that nova did not make: UUID and interfaces, no nova metadata', () => {
    const plain = "<domain type='kvm'><name>db-1</name><uuid>AB5C7D3E-4F1A-4C2B-9E8D-7A6B5C4D3E2F</uuid><devices><interface type='network'><mac address='52:54:00:aa:bb:cc'/><target dev='vnet0'/></interface></devices></domain>";
    expect(parseDomainXml(plain, 'db-1')).toEqual({ name: 'db-1', uuid: 'ab5c7d3e-4f1a-4c2b-9e8d-7a6b5c4d3e2f', nova: null, interfaces: [{ device: 'vnet0', mac: '52:54:00:aa:bb:cc' }] });
  });

  it.each([
    ['<domain><uuid>x</uuid></domain>', 'no <domain> with a <name>'],
    ['<network><name>default</name></network>', 'no <domain> with a <name>'],
    ['', 'no <domain> with a <name>'],
  ])('refuses %j, naming the domain', (xml, why) => {
    expect(() => parseDomainXml(xml, 'vm-9')).toThrow(`libvirt domain XML of vm-9 cannot be used: ${why}`);
  });

  it('never throws anything but a LivemigError, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string().map((s) => `<domain><name>${s}</name>${s}</domain>`)), (xml) => {
        try {
          parseDomainXml(xml, 'fuzz');
        } catch (err) {
          expect(err).toBeInstanceOf(LivemigError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
