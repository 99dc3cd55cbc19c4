// BalancerKind (the config name) -> picker builder. The EndpointSet calls the builder every time membership or
// health changes and publishes the picker it returns.
import type { BalancerKind } from '../config/service-spec.js';
import { BALANCER_KINDS } from '../config/service-spec.js';
import type { Picker, PickerBuilder, PickerDeps, PickerEndpoint } from './picker.js';
import { UnavailablePicker } from './picker.js';
import { LeastConnectionsPicker } from './balancer/least-connections.js';
import { MaglevPicker, type MaglevOptions } from './balancer/maglev.js';
import { CHEAPEST, LEAST_LOADED, TwoChoicePicker } from './balancer/p2c.js';
import { RandomPicker } from './balancer/random.js';
import { RingHashPicker, type RingHashOptions } from './balancer/ring-hash.js';
import { RoundRobinPicker, type RoundRobinOptions } from './balancer/round-robin.js';

/** Tuning for the balancers that have any. */
export interface BalancerOptions {
  readonly roundRobin?: RoundRobinOptions;
  readonly ringHash?: RingHashOptions;
  readonly maglev?: MaglevOptions;
}


export function isBalancerKind(text: string): text is BalancerKind {
  return (BALANCER_KINDS as readonly string[]).includes(text);
}

export function pickerBuilderFor(kind: BalancerKind, options: BalancerOptions = {}): PickerBuilder {
  const build = (make: (endpoints: readonly PickerEndpoint[], deps: PickerDeps) => Picker): PickerBuilder =>
    (endpoints, deps) => (endpoints.length === 0 ? new UnavailablePicker('no-endpoints') : make(endpoints, deps));
  switch (kind) {
    case 'round-robin': return build((e, d) => new RoundRobinPicker(e, d, options.roundRobin));
    case 'least-connections': return build((e, d) => new LeastConnectionsPicker(e, d));
    case 'random': return build((e, d) => new RandomPicker(e, d));
    case 'p2c':
    case 'least-request': return build((e, d) => new TwoChoicePicker(e, d, LEAST_LOADED));
    case 'peak-ewma': return build((e, d) => new TwoChoicePicker(e, d, CHEAPEST));
    case 'ring-hash': return build((e, d) => new RingHashPicker(e, d, options.ringHash));
    case 'maglev': return build((e, d) => new MaglevPicker(e, d, options.maglev));
    default: {
      const unknown: never = kind;
      throw new RangeError(`unknown balancer kind: ${String(unknown)}`);
    }
  }
}
