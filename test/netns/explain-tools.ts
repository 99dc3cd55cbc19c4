// Servers and clients of the explain netns test, run inside pods: `node dist/test/netns/explain-tools.js <tool> ...`.
// They print "ready" once they are in the state the test then inspects; they run until killed (the mesh kills them).
import { connect, createServer } from 'node:net';

const [tool = '', ...args] = process.argv.slice(2);
const arg = (i: number, name: string): string => {
  const v = args[i];
  if (v === undefined) throw new Error(`${tool}: missing ${name}`);
  return v;
};

switch (tool) {
  // greet-hold HOST PORT GREETING: writes GREETING to every connection, reads whatever comes, never closes its side
  // (a client's FIN leaves the connection half-closed).
  case 'greet-hold': {
    const greeting = arg(2, 'GREETING');
    const server = createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => undefined);
      s.resume();
      s.write(greeting);
    });
    server.listen({ host: arg(0, 'HOST'), port: Number(arg(1, 'PORT')), ipv6Only: false }, () => { process.stdout.write('ready\n'); });
    break;
  }
  // hold-client HOST PORT BYTES end|open: connects, sends BYTES bytes, ends its write side when asked, and prints
  // "ready" once the server's greeting has arrived; then holds the connection until killed.
  case 'hold-client': {
    const bytes = Number(arg(2, 'BYTES'));
    const end = arg(3, 'end|open') === 'end';
    const s = connect({ host: arg(0, 'HOST'), port: Number(arg(1, 'PORT')), allowHalfOpen: true });
    s.on('error', (err) => { process.stdout.write(`error ${(err as NodeJS.ErrnoException).code ?? err.message}\n`); });
    s.once('connect', () => {
      s.write(Buffer.alloc(bytes, 0x78));
      if (end) s.end();
    });
    s.once('data', () => { process.stdout.write('ready\n'); });
    s.resume();
    break;
  }
  default:
    process.stderr.write(`unknown tool ${tool}\n`);
    process.exit(2);
}
