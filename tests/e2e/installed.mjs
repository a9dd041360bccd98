// Starts an installed Quire (the binary the .deb put on the system) through tauri-driver
// and checks it reaches a ready window: with no model installed it must offer to import
// one and name the setup command. Saves a screenshot.
//
//   node tests/e2e/installed.mjs /usr/bin/quire-desktop OUT_DIR
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Driver } from './webdriver.mjs';

const [app, outDir] = process.argv.slice(2);
mkdirSync(outDir, { recursive: true });
const driver = new Driver();
const tauriDriver = spawn('tauri-driver', ['--port', '4444'], { stdio: ['ignore', 'inherit', 'inherit'] });
let ok = false;
try {
  await driver.ready();
  await driver.start(app);
  await driver.waitFor('#app-ready', { timeoutMs: 60000, what: 'the installed app to be ready' });
  const [panel] = await driver.waitFor('#no-model', { what: 'the first-run model panel' });
  const text = await driver.text(panel);
  if (!/import/i.test(text) || !/fetch-models/.test(text)) {
    throw new Error(`the first-run panel does not offer an import and the setup command: ${text}`);
  }
  execFileSync('import', ['-window', 'root', join(outDir, 'installed-first-run.png')]);
  ok = true;
  console.log('installed: 1 passed, 0 failed');
} catch (e) {
  console.error(`installed: ${e.message}`);
  console.log('installed: 0 passed, 1 failed');
} finally {
  await driver.quit();
  tauriDriver.kill();
}
process.exit(ok ? 0 : 1);
