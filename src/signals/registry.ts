/**
 * Every signal the exporter knows, in start order (node_exporter's registerCollector, as one
 * list): a signal is a factory in its own file here, and adding one is a line below; startup
 * loops over the list and never names a signal.
 */
import { framesSignal } from './frames.js';
import { libvirtSignal } from './libvirt.js';
import { libvirtVirshSignal } from './libvirt-virsh.js';
import { logsSignal } from './logs.js';
import { netdevSignal } from './netdev.js';
import { pingSignal } from './ping.js';
import { qmpSignal } from './qmp.js';
import type { SignalFactory } from './signal.js';

export const SIGNALS: readonly SignalFactory[] = [qmpSignal, pingSignal, framesSignal, libvirtSignal, libvirtVirshSignal, logsSignal, netdevSignal];
