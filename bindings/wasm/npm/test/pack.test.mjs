// As a new user: `npm pack` the package, install it into an empty folder, follow the README to
// verify a ticket minted by the Rust CLI; and type-check a TypeScript user of the package.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, rmSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const pkg = new URL('..', import.meta.url).pathname;
const repo = new URL('../../../..', import.meta.url).pathname;
const cli = join(repo, 'target/debug/captix');

test('npm pack, install into an empty folder, verify a ticket minted by the Rust CLI', () => {
  assert.ok(existsSync(cli), `${cli} is built by cargo test before the JavaScript tests`);
  const dir = mkdtempSync(join(tmpdir(), 'captix-pack-'));
  try {
    const tgz = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: pkg, encoding: 'utf8' }).trim().split('\n').pop();
    const app = join(dir, 'app');
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module' }));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--offline', '--loglevel=error', join(dir, tgz)], { cwd: app });
    execFileSync(cli, ['keygen', '--out', 'root'], { cwd: app });
    const ticket = execFileSync(cli, ['mint', '--key', 'root.key', '--agent', 'billing-agent', '--user', 'alice', '--tool', 'list_invoices', '--row', '*:org=acme', '--ttl', '1h'], { cwd: app, encoding: 'utf8' }).trim();
    const sub = execFileSync(cli, ['attenuate', '-', '--budget', '10'], { cwd: app, input: ticket, encoding: 'utf8' }).trim();
    writeFileSync(join(app, 'ticket'), sub);
    // The README's first example, with the key line from root.pub.
    writeFileSync(join(app, 'verify.mjs'), `
      import { readFileSync } from 'node:fs';
      import { Verifier } from '@captix/captix';
      const key = readFileSync('root.pub', 'utf8').split('\\n').find((l) => l && !l.startsWith('#'));
      const verifier = new Verifier({ publicKeys: [key] });
      const ticket = readFileSync('ticket', 'utf8').trim();
      const ok = verifier.check(ticket, { tool: 'list_invoices', arguments: { org: 'acme' } });
      const no = verifier.check(ticket, { tool: 'list_invoices', arguments: { org: 'globex' } });
      console.log(JSON.stringify([ok.decision, ok.identity.user, no.code, no.reason]));
    `);
    const out = JSON.parse(execFileSync('node', ['verify.mjs'], { cwd: app, encoding: 'utf8' }));
    assert.deepEqual(out, ['allow', 'alice', 'arg_denied', 'block 0: argument /org is not allowed (row *:/org = "acme")']);
    // The optional peers are not installed here: the guard (for SDK 2.x on stdio, say) and
    // captixFetch load without SDK 1.x or Express.
    assert.ok(!existsSync(join(app, 'node_modules/@modelcontextprotocol/sdk')), 'no SDK 1.x in the app');
    writeFileSync(join(app, 'layers.mjs'), `
      import { captixGuard, decisionOf } from '@captix/captix/mcp';
      import { captixFetch } from '@captix/captix/fetch';
      console.log(JSON.stringify([typeof captixGuard, typeof decisionOf, typeof captixFetch]));
    `);
    assert.deepEqual(JSON.parse(execFileSync('node', ['layers.mjs'], { cwd: app, encoding: 'utf8' })), ['function', 'function', 'function']);
    const packed = JSON.parse(readFileSync(join(app, 'node_modules/@captix/captix/package.json'), 'utf8'));
    assert.equal(packed.name, '@captix/captix');
    assert.ok(existsSync(join(app, 'node_modules/@captix/captix/wasm/captix_wasm_bg.wasm')));
    // Both modules are in the tarball; an installed app selects the lean one by its condition.
    assert.ok(existsSync(join(app, 'node_modules/@captix/captix/wasm-lean/captix_wasm_bg.wasm')));
    writeFileSync(join(app, 'which.mjs'), `import { build } from '@captix/captix'; console.log(build);`);
    const which = (...flags) => execFileSync('node', [...flags, 'which.mjs'], { cwd: app, encoding: 'utf8' }).trim();
    assert.equal(which(), 'full');
    assert.equal(which('--conditions=captix-lean'), 'lean');
    // What a user (and the registry) needs to know where it comes from and under which terms.
    for (const f of ['LICENSE-APACHE', 'LICENSE-MIT', 'README.md']) {
      assert.ok(existsSync(join(app, 'node_modules/@captix/captix', f)), `${f} in the tarball`);
    }
    assert.match(readFileSync(join(app, 'node_modules/@captix/captix/LICENSE-MIT'), 'utf8'), /MIT License/);
    assert.equal(packed.license, 'Apache-2.0 OR MIT');
    assert.match(packed.repository.url, /github\.com\/captix\/captix/);
    assert.ok(packed.homepage && packed.bugs.url, 'homepage and bugs');
    assert.equal(packed.peerDependenciesMeta.express.optional, true, 'express: an optional peer');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the TypeScript types compile for a strict user of the package', () => {
  // Resolve the package by name as a user would: a folder whose node_modules holds it.
  const dir = mkdtempSync(join(tmpdir(), 'captix-types-'));
  try {
    cpSync(join(pkg, 'test/types'), dir, { recursive: true });
    // Every TypeScript snippet of the package README, compiled as its own module; the names a
    // snippet takes as given (the caller's ticket, a server...) are ambient in readme-globals.d.ts.
    const snippets = [...readFileSync(join(pkg, 'README.md'), 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
    assert.ok(snippets.length >= 4, `${snippets.length} TypeScript snippets in the README`);
    const files = ['check.ts', 'readme-globals.d.ts'];
    for (const [i, code] of snippets.entries()) {
      writeFileSync(join(dir, `readme-${i}.mts`), `${code}\nexport {};\n`);
      files.push(`readme-${i}.mts`);
    }
    const tsconfig = JSON.parse(readFileSync(join(dir, 'tsconfig.json'), 'utf8'));
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ ...tsconfig, files }));
    const nm = join(dir, 'node_modules');
    execFileSync('mkdir', ['-p', join(nm, '@captix'), join(nm, '@modelcontextprotocol')]);
    execFileSync('ln', ['-s', pkg, join(nm, '@captix/captix')]);
    for (const sdk of ['sdk', 'server', 'core']) {
      execFileSync('ln', ['-s', join(pkg, 'node_modules/@modelcontextprotocol', sdk), join(nm, '@modelcontextprotocol', sdk)]);
    }
    for (const dep of ['express', '@types/express', '@types/express-serve-static-core', 'zod']) {
      if (existsSync(join(pkg, 'node_modules', dep))) {
        execFileSync('mkdir', ['-p', join(nm, dep, '..')]);
        execFileSync('ln', ['-sfn', join(pkg, 'node_modules', dep), join(nm, dep)]);
      }
    }
    execFileSync(join(pkg, 'node_modules/.bin/tsc'), ['-p', join(dir, 'tsconfig.json')], { encoding: 'utf8' });
  } catch (e) {
    assert.fail(`tsc failed:\n${e.stdout ?? ''}${e.stderr ?? ''}${e.message}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
