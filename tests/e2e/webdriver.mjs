// A minimal W3C WebDriver client over fetch, for driving the real app through
// tauri-driver (which speaks WebDriver on 127.0.0.1:4444 and starts the app).

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

export class Driver {
  constructor(base = 'http://127.0.0.1:4444') {
    this.base = base;
    this.session = null;
  }

  async call(method, path, body) {
    let res;
    try {
      res = await fetch(this.base + path, {
        method,
        headers: { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new Error(`${method} ${path}: ${e.message}${e.cause ? ` (${e.cause.message || e.cause})` : ''}`);
    }
    const json = await res.json().catch(() => ({}));
    if (!res.ok) {
      const v = json.value || {};
      throw new Error(`${method} ${path}: ${res.status} ${v.error || ''} ${v.message || ''}`);
    }
    return json.value;
  }

  async ready(timeoutMs = 20000) {
    const until = Date.now() + timeoutMs;
    for (;;) {
      try {
        const v = await this.call('GET', '/status');
        if (v) return;
      } catch {
        /* not up yet */
      }
      if (Date.now() > until) throw new Error('tauri-driver did not come up');
      await sleep(200);
    }
  }

  async start(application, env) {
    const options = { application };
    if (env) options.env = env;
    const v = await this.call('POST', '/session', {
      capabilities: { alwaysMatch: { 'tauri:options': options } },
    });
    this.session = v.sessionId;
  }

  async quit() {
    if (!this.session) return;
    const s = this.session;
    this.session = null;
    await this.call('DELETE', `/session/${s}`).catch(() => {});
  }

  s(path) {
    return `/session/${this.session}${path}`;
  }

  async find(css) {
    const v = await this.call('POST', this.s('/element'), { using: 'css selector', value: css });
    return v[ELEMENT];
  }

  async findAll(css) {
    const v = await this.call('POST', this.s('/elements'), { using: 'css selector', value: css });
    return v.map((e) => e[ELEMENT]);
  }

  /** Waits until `css` matches at least `count` elements; returns them. */
  async waitFor(css, { timeoutMs = 30000, count = 1, what } = {}) {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = await this.findAll(css).catch(() => []);
      if (found.length >= count) return found;
      if (Date.now() > until) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what || css} (x${count})`);
      }
      await sleep(250);
    }
  }

  async click(css) {
    const [e] = await this.waitFor(css);
    await this.call('POST', this.s(`/element/${e}/click`), {});
  }

  async clickElement(e) {
    await this.call('POST', this.s(`/element/${e}/click`), {});
  }

  async type(css, text) {
    const [e] = await this.waitFor(css);
    await this.call('POST', this.s(`/element/${e}/clear`), {}).catch(() => {});
    await this.call('POST', this.s(`/element/${e}/value`), { text });
  }

  async text(e) {
    return this.call('GET', this.s(`/element/${e}/text`));
  }

  async attr(e, name) {
    return this.call('GET', this.s(`/element/${e}/attribute/${name}`));
  }

  async exec(script, args = []) {
    return this.call('POST', this.s('/execute/sync'), { script, args });
  }

}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
