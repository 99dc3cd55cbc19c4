// Runs DNS discovery for every discovery = dns service of a config file and prints each endpoint update as one
// JSON line on stdout ({"service", "endpoints": ["10.0.0.1:80", ...]}); discovery logs (pino NDJSON) go to stderr.
// Started inside a test pod by discovery-dns.netns.test.ts. Usage: node discovery-dns-probe.js CONFIG.ini
import { readIniFile } from '../../src/config/ini-file.js';
import { serviceRegistryOrThrow } from '../../src/config/service-registry.js';
import { createLogger } from '../../src/core/log.js';
import { createDnsResolver, DnsDiscovery } from '../../src/upstream/dns-discovery.js';
import { endpointKey } from '../../src/config/service-spec.js';

const file = process.argv[2];
if (file === undefined) {
  process.stderr.write('usage: discovery-dns-probe CONFIG.ini\n');
  process.exit(2);
}
const { doc, issues } = readIniFile(file);
if (issues.length > 0) throw new Error(JSON.stringify(issues));
const reg = serviceRegistryOrThrow(doc);
const log = createLogger({ level: 'debug', name: 'discovery-probe', fd: 2 });
const resolver = createDnsResolver(reg.registry);
const running: DnsDiscovery[] = [];
for (const service of reg.services) {
  const d = DnsDiscovery.forService(service, {
    resolver,
    log,
    onUpdate: (u) => {
      process.stdout.write(`${JSON.stringify({ service: u.service, endpoints: u.endpoints.map((e) => `${endpointKey(e)} w=${e.weight}`) })}\n`);
    },
  });
  if (d !== undefined) running.push(d);
}
for (const d of running) d.start();
// Discovery timers are unref'd; this keeps the probe alive until it is killed.
const keepAlive = setInterval(() => undefined, 60_000);
process.once('SIGTERM', () => {
  for (const d of running) d.stop();
  clearInterval(keepAlive);
});
