/**
 * What a libvirt domain's XML description tells about the VM (pure): its UUID, which in nova IS
 * the instance UUID; what nova wrote into its metadata (the display name, the flavor, the
 * project); and its interfaces' host-side devices. Parsed with fast-xml-parser; elements are
 * found by namespace URI, not by prefix, so another prefix for nova's namespace works the same.
 */
import { XMLParser } from 'fast-xml-parser';
import { livemigError } from '../../errors.js';

export const NOVA_METADATA_NAMESPACE = 'http://openstack.org/xmlns/libvirt/nova/1.1';

export interface NovaInstanceMetadata {
  /** nova's display name of the instance. */
  name: string | null;
  flavor: string | null;
  project: string | null;
  projectUuid: string | null;
}

export interface DomainDescription {
  name: string;
  /** Lower case; null when the XML has none. */
  uuid: string | null;
  nova: NovaInstanceMetadata | null;
  interfaces: { device: string; mac: string | null }[];
}

type XmlNode = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  textNodeName: '#text',
  parseTagValue: false,
  parseAttributeValue: false,
  processEntities: true,
  isArray: (name) => name === 'interface',
});

/** Parses `virsh dumpxml` / DOMAIN_GET_XML_DESC output; `what` names the domain in errors. */
export function parseDomainXml(xml: string, what: string): DomainDescription {
  let root: XmlNode;
  try {
    root = parser.parse(xml) as XmlNode;
  } catch (err) {
    throw livemigError('LME_LIBVIRT_XML', what, (err as Error).message);
  }
  const domain = asNode(root.domain);
  const name = text(domain?.name);
  if (!domain || !name) throw livemigError('LME_LIBVIRT_XML', what, 'no <domain> with a <name>');
  const uuid = text(domain.uuid)?.toLowerCase() ?? null;
  const devices = asNode(domain.devices);
  const interfaces = (Array.isArray(devices?.interface) ? devices.interface : [])
    .map(asNode)
    .flatMap((i) => {
      const device = attribute(asNode(i?.target), 'dev');
      return device ? [{ device, mac: attribute(asNode(i?.mac), 'address') }] : [];
    });
  return { name, uuid, nova: novaMetadata(asNode(domain.metadata)), interfaces };
}

function novaMetadata(metadata: XmlNode | undefined): NovaInstanceMetadata | null {
  if (!metadata) return null;
  for (const [key, value] of Object.entries(metadata)) {
    const node = asNode(value);
    const prefix = key.includes(':') ? key.slice(0, key.indexOf(':')) : null;
    const namespace = node?.[prefix ? `@xmlns:${prefix}` : '@xmlns'];
    if (!node || namespace !== NOVA_METADATA_NAMESPACE || localName(key) !== 'instance') continue;
    const child = (local: string): unknown => node[prefix ? `${prefix}:${local}` : local];
    const project = asNode(child('owner'))?.[prefix ? `${prefix}:project` : 'project'];
    return {
      name: text(child('name')),
      flavor: attribute(asNode(child('flavor')), 'name'),
      project: text(project),
      projectUuid: attribute(asNode(project), 'uuid'),
    };
  }
  return null;
}

function localName(key: string): string {
  return key.includes(':') ? key.slice(key.indexOf(':') + 1) : key;
}

function asNode(value: unknown): XmlNode | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as XmlNode) : undefined;
}

/** An element's text: the element itself when it has no attributes, else its #text. */
function text(value: unknown): string | null {
  const raw = typeof value === 'string' ? value : asNode(value)?.['#text'];
  return typeof raw === 'string' && raw.trim() ? raw.trim() : null;
}

function attribute(node: XmlNode | undefined, name: string): string | null {
  const value = node?.[`@${name}`];
  return typeof value === 'string' && value ? value : null;
}
