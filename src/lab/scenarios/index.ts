import { demo } from './demo.js';
import { flavors } from './flavors.js';
import { outage } from './outage.js';
import { outageCauses } from './outage-causes.js';
import { stressSweep } from './stress-sweep.js';
import type { Scenario, ScenarioName } from './types.js';

export function scenario(name: ScenarioName, options: { count?: number; steps?: number[] } = {}): Scenario {
  switch (name) {
    case 'stress-sweep':
      return stressSweep(options.steps);
    case 'flavors':
      return flavors();
    case 'outage':
      return outage(options.count);
    case 'outage-causes':
      return outageCauses(options.count);
    case 'demo':
      return demo(options.count);
  }
}
export { SCENARIO_NAMES, type ScenarioName } from './types.js';
