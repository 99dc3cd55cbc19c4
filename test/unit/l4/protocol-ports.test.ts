import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { declaredProtocol, DEFAULT_OPAQUE_PORTS, type PortDeclaration } from '../../../src/l4/detect/protocol-ports.js';

describe('declaredProtocol', () => {
  it("the default opaque list is linkerd's server-first set", () => {
    assert.deepEqual([...DEFAULT_OPAQUE_PORTS], [25, 587, 3306, 4444, 5432, 6379, 9300, 11211]);
    assert.ok(Object.isFrozen(DEFAULT_OPAQUE_PORTS));
    for (const p of DEFAULT_OPAQUE_PORTS) assert.equal(declaredProtocol(p), 'opaque');
    for (const p of [80, 443, 8080, 3307, 1]) assert.equal(declaredProtocol(p), 'detect');
  });

  it('explicit declarations win over the defaults; the last matching one wins; ranges are inclusive', () => {
    const decl: PortDeclaration[] = [
      { first: 8000, last: 8999, protocol: 'http' },
      { first: 8443, last: 8443, protocol: 'tls' },
      { first: 6379, last: 6379, protocol: 'detect' },
      { first: 3306, last: 3306, protocol: 'http2' },
    ];
    assert.equal(declaredProtocol(8000, decl), 'http');
    assert.equal(declaredProtocol(8999, decl), 'http');
    assert.equal(declaredProtocol(9000, decl), 'detect');
    assert.equal(declaredProtocol(8443, decl), 'tls');
    assert.equal(declaredProtocol(6379, decl), 'detect', "'detect' removes a default-opaque port");
    assert.equal(declaredProtocol(3306, decl), 'http2');
    assert.equal(declaredProtocol(5432, decl), 'opaque');
    assert.equal(declaredProtocol(8443, [...decl, { first: 1, last: 65535, protocol: 'opaque' }]), 'opaque');
  });

  it('custom or empty default lists', () => {
    assert.equal(declaredProtocol(6379, [], []), 'detect');
    assert.equal(declaredProtocol(4222, [], [4222]), 'opaque');
  });

  it('invalid ports are never declared', () => {
    const all: PortDeclaration[] = [{ first: -10, last: 70000, protocol: 'opaque' }];
    for (const p of [0, -1, 65536, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) assert.equal(declaredProtocol(p, all, [p]), 'detect');
  });
});
