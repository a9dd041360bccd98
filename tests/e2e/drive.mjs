// Drives the real Quire desktop app end to end through tauri-driver and WebKitWebDriver:
// add papers (and a scanned and a password-protected PDF), ask a question, see the
// sources and a cited answer, open a citation at its page, write a note, look at the
// settings, restart the app and find the conversation again. Saves a screenshot of each
// screen. Run by tests/e2e/run.sh (Xvfb, a private D-Bus with gnome-keyring, and no
// network), never on its own.
//
//   node tests/e2e/drive.mjs APP DOCS_DIR OUT_DIR
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Driver, sleep } from './webdriver.mjs';

const [app, docsDir, outDir] = process.argv.slice(2);
if (!app || !docsDir || !outDir) {
  console.error('usage: drive.mjs APP DOCS_DIR OUT_DIR');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

// What the question is about, and a word the cited passage holds (see run.sh for the
// documents).
const QUESTION = process.env.QUIRE_E2E_QUESTION;

const results = [];
function check(name, ok, detail = '') {
  results.push({ name, ok, detail });
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` — ${detail}` : ''}`);
  if (!ok) throw new Error(`${name}: ${detail}`);
}

const driver = new Driver();
const tauriDriver = spawn('tauri-driver', ['--port', '4444'], {
  stdio: ['ignore', 'inherit', 'inherit'],
});

// The X screen as a person sees it (WebKitWebDriver's own screenshot command hangs
// under Xvfb without compositing).
async function shot(name) {
  await sleep(400); // let the last frame paint
  const file = join(outDir, `${name}.png`);
  execFileSync('import', ['-window', 'root', file]);
  console.log(`     screenshot ${name}.png (${statSync(file).size} bytes)`);
}

async function launch() {
  await driver.start(app);
  // The start-up screen resolves to the app (the keychain opens the data folder).
  await driver.waitFor('#app-ready', { timeoutMs: 60000, what: 'the app to be ready' });
}

// Ending the WebDriver session does not close a Tauri app's window: close it the way the
// desktop does at logout (SIGTERM), and wait until it is gone so the next start finds the
// data folder free.
async function untilExited() {
  // The app's own command line starts with its path (the shell that started this test
  // has the path further along in its arguments, and must not be matched).
  const bin = `^${process.env.QUIRE_E2E_BIN.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}( |$)`;
  const alive = () => {
    try {
      execFileSync('pgrep', ['-f', bin]);
      return true;
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 20 && alive(); i++) await sleep(250);
  if (alive()) {
    execFileSync('pkill', ['-TERM', '-f', bin]);
    for (let i = 0; i < 40 && alive(); i++) await sleep(250);
  }
  if (alive()) throw new Error('the app did not exit after SIGTERM');
}

async function count(css) {
  return (await driver.findAll(css)).length;
}

let failed = false;
try {
  await driver.ready();

  // 1. First start: the app opens on the chat with nothing yet.
  await launch();
  await shot('01-first-start');

  // 2. Library: add a folder of papers, a scanned PDF and a password-protected one.
  await driver.click('#nav-library');
  await driver.type('#add-path', docsDir);
  await driver.click('#add-path-button');
  const docs = await driver.waitFor('#library .doc', {
    count: 4,
    timeoutMs: 240000,
    what: 'four documents in the library',
  });
  // Wait for the ingest to finish (the progress bar goes away or reaches the end).
  const until = Date.now() + 240000;
  let statuses = [];
  for (;;) {
    const els = await driver.findAll('#library .doc');
    statuses = await Promise.all(els.map((e) => driver.attr(e, 'data-status')));
    const busy = await count('#ingest-progress[data-active="true"]');
    if (!busy && statuses.filter((s) => s === 'indexed').length >= 2) break;
    if (Date.now() > until) break;
    await sleep(500);
  }
  check('library lists every file', docs.length >= 4, `${docs.length} documents`);
  check('papers are indexed', statuses.filter((s) => s === 'indexed').length >= 2, statuses.join(','));
  check('a scanned PDF shows "no text layer"', statuses.includes('no_text_layer'), statuses.join(','));
  check(
    'a password-protected PDF shows so',
    statuses.includes('password_protected'),
    statuses.join(','),
  );
  await shot('02-library');

  // Added folders are watched: a note saved into the folder shows up by itself.
  writeFileSync(
    join(docsDir, 'ward-round.md'),
    '# Ward round\n\nAnti-Xa levels are checked before the third dose of enoxaparin.\n',
  );
  await driver.waitFor('#library .doc', {
    count: 5,
    timeoutMs: 60000,
    what: 'the file added to the watched folder',
  });
  check('a file saved into a watched folder is indexed by itself', true);

  // 3. Chat: ask; sources arrive before the answer is done; the answer cites them.
  await driver.click('#nav-chat');
  await driver.type('#question', QUESTION);
  await driver.click('#send');
  await driver.waitFor('#sources .source', { timeoutMs: 60000, what: 'sources' });
  const doneEarly = await count('.answer[data-complete="true"]');
  check('sources show before the answer is finished', doneEarly === 0);
  await driver.waitFor('.answer[data-complete="true"]', {
    timeoutMs: 240000,
    what: 'the answer to finish',
  });
  const chips = await driver.findAll('.answer .citation');
  check('the answer carries citation chips', chips.length > 0, `${chips.length} chips`);
  await shot('03-chat-with-citations');

  // 4. A citation opens the document at its page, the passage highlighted.
  const chip = chips[0];
  const n = await driver.attr(chip, 'data-n');
  const wantPage = await driver.attr(chip, 'data-page');
  await driver.clickElement(chip);
  const [viewer] = await driver.waitFor('#viewer', { what: 'the document viewer' });
  let page = null;
  const pageUntil = Date.now() + 30000;
  while (Date.now() < pageUntil) {
    page = await driver.attr(viewer, 'data-page');
    if (page && (await count('#viewer .highlight')) > 0) break;
    await sleep(300);
  }
  check(
    `citation [${n}] lands on its page`,
    wantPage == null || String(page) === String(wantPage),
    `viewer page ${page}, cited page ${wantPage}`,
  );
  check('the cited passage is highlighted', (await count('#viewer .highlight')) > 0);
  await shot('04-citation-in-pdf');
  await driver.click('#viewer-close');
  check('the viewer closes', (await count('#viewer')) === 0);

  // 5. Notes: write one; it is listed.
  await driver.click('#nav-notes');
  await driver.click('#note-new');
  await driver.type('#note-title', 'Ward round');
  await driver.type('#note-body', 'Check **anti-Xa** levels before the next dose.');
  await driver.click('#note-save');
  await driver.waitFor('#notes .note', { what: 'the saved note' });
  await shot('05-notes');

  // 6. Settings, with the About text.
  await driver.click('#nav-settings');
  const [about] = await driver.waitFor('#about');
  const aboutText = await driver.text(about);
  check('About says Quire makes no network connections', /no network connections/i.test(aboutText));
  let loaded = false;
  for (let i = 0; i < 80 && !loaded; i++) {
    loaded = await driver.exec(
      "const s = document.querySelector('#settings'); return !!s && !/Loading/.test(s.innerText) && !!s.querySelector('input');",
    );
    if (!loaded) await sleep(250);
  }
  check('settings load the models and answer settings', loaded);
  await shot('06-settings');

  // 7. Restart: the conversation and the note are still there.
  await driver.quit();
  await untilExited();
  await launch();
  const convs = await driver.waitFor('#conversations .conversation', {
    what: 'the earlier conversation',
  });
  check('the conversation survives a restart', convs.length >= 1);
  await driver.clickElement(convs[0]);
  await driver.waitFor('.answer', { what: 'the stored answer' });
  await shot('07-after-restart');
  await driver.click('#nav-notes');
  await driver.waitFor('#notes .note', { what: 'the note after restart' });
  check('the note survives a restart', true);

  // 8. A damaged database: an actionable screen, and "start afresh" moves the folder
  // aside (nothing deleted) and opens a new one.
  await driver.quit();
  await untilExited();
  const dataDir = join(process.env.XDG_DATA_HOME, 'quire');
  writeFileSync(join(dataDir, 'quire.db'), Buffer.alloc(64 * 1024, 0x5a));
  await driver.start(app);
  await driver.waitFor('#startup[data-state="error"]', { timeoutMs: 60000, what: 'the start-up error screen' });
  const [message] = await driver.waitFor('#start-error-message');
  check('a damaged database opens an error screen', (await driver.text(message)).length > 0);
  check('it offers to start afresh', (await count('#action-start_afresh')) === 1);
  await shot('08-damaged-data');
  await driver.click('#action-start_afresh');
  await driver.click('#confirm-afresh');
  await driver.waitFor('#app-ready', { timeoutMs: 60000, what: 'a fresh start' });
  const aside = readdirSync(process.env.XDG_DATA_HOME).filter((n) => n.startsWith('quire-unreadable-'));
  check('the unreadable folder was moved aside, not deleted', aside.length === 1, aside.join(','));
} catch (e) {
  failed = true;
  console.error(`e2e: ${e.message}`);
  await shot('zz-failure').catch(() => {});
} finally {
  await driver.quit();
  tauriDriver.kill();
}
const passed = results.filter((r) => r.ok).length;
console.log(`e2e: ${passed} passed, ${results.length - passed + (failed ? 1 : 0)} failed`);
process.exit(failed ? 1 : 0);
