// Opens one saga's run page in the Temporal Web UI of `make run`'s stack, in Debian's
// chromium driven by playwright-core, and reports what a person sees there.
//
//   node run_page.mjs --ui http://127.0.0.1:8233 --workflow-id ID --run-id RID \
//       --mode decrypted|encrypted --expect TEXT --out DIR [--codec-endpoint URL]
//   (the codec token comes in the CODEC_TOKEN environment variable, never in argv)
//
// decrypted: signs in to the codec server once (its /login page sets a session cookie)
//   and sets the UI's "Codec Server" dialog as `make run`'s banner tells an operator to,
//   then waits until the Input section shows TEXT.
// encrypted: touches no codec setting and waits until the Input section shows the
//   encrypted form of the payload (binary/encrypted, plain or base64).
//
// Prints one JSON object on stdout (what was found; the pytest test asserts on it) and
// saves screenshots into DIR. Exits 1 with a message on stderr when an expected element
// of the page is missing; content that does not match within the deadline is reported,
// not judged, so the test shows what the page held instead.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
// What Chromium needs on these machines (the network is closed but for loopback).
const CHROMIUM_ARGS = [
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ENCODING = 'binary/encrypted';
// The UI shows payload metadata as the API holds it: base64 of the bytes.
const ENCODING_BASE64 = Buffer.from(ENCODING).toString('base64');
const ELEMENT_MS = 30_000;
const CONTENT_MS = 45_000;
const VIEWPORT = { width: 1440, height: 1000 };

class PageError extends Error {}

function options() {
  const { values } = parseArgs({
    options: {
      ui: { type: 'string' },
      'workflow-id': { type: 'string' },
      'run-id': { type: 'string' },
      mode: { type: 'string' },
      expect: { type: 'string' },
      out: { type: 'string' },
      'codec-endpoint': { type: 'string' },
    },
  });
  for (const name of ['ui', 'workflow-id', 'run-id', 'mode', 'out']) {
    if (!values[name]) throw new PageError(`missing --${name}`);
  }
  if (!['decrypted', 'encrypted'].includes(values.mode)) {
    throw new PageError(`--mode must be decrypted or encrypted, not ${values.mode}`);
  }
  const codec = values['codec-endpoint'] && process.env.CODEC_TOKEN;
  if (values.mode === 'decrypted' && (!values.expect || !codec)) {
    throw new PageError('--mode decrypted needs --expect, --codec-endpoint and CODEC_TOKEN');
  }
  return values;
}

/** Waits for a locator to be visible; a missing element is a PageError naming it. */
async function visible(locator, what, timeout = ELEMENT_MS) {
  try {
    await locator.first().waitFor({ state: 'visible', timeout });
  } catch {
    throw new PageError(`${what} did not appear within ${timeout / 1000}s`);
  }
  return locator.first();
}

/** Polls read() until accept(value) holds or the deadline passes; returns the last value. */
async function poll(read, accept, timeout = CONTENT_MS) {
  const deadline = Date.now() + timeout;
  let value = await read();
  while (!accept(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    value = await read();
  }
  return value;
}

// -- the codec server, as `make run`'s banner tells an operator ------------------------

/** Step 1: present the token once at <endpoint>/login; the answer sets a session cookie. */
async function signInToCodecServer(page, endpoint, token) {
  await page.goto(`${endpoint}/login`);
  await (await visible(page.locator('input[name="token"]'), 'the codec sign-in form')).fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const signedIn = page.getByRole('heading', { name: /signed in/i });
  const refused = page.getByText('That token is not valid');
  await visible(signedIn.or(refused), 'the codec server\'s answer to the sign-in');
  if (await refused.isVisible()) throw new PageError('the codec server refused the token');
}

async function openCodecDialog(page) {
  const button = page.locator('[data-testid^="data-encoder-status"]');
  await (await visible(button, 'the Codec Server button in the top bar')).click();
  await visible(page.getByTestId('data-encoder-title'), 'the Codec Server dialog');
}

/** Step 2: the UI's "Codec Server" dialog: browser endpoint, cross-origin credentials. */
async function useBrowserCodecSetting(page, endpoint) {
  await openCodecDialog(page);
  await page.getByTestId('override-accordion').getByRole('button').first().click();
  const ownSetting = page.getByTestId('use-local-endpoint-input');
  await (await visible(ownSetting, 'the "Use my browser setting" choice')).check();
  await page.getByTestId('data-encoder-endpoint-input').fill(endpoint);
  const credentials = page.getByTestId('data-encoder-include-credentials');
  // The page overlaps the lower part of this drawer (the sticky top bar, the run's
  // header) and the switch's checkbox is visually hidden: use the keyboard, as a
  // person can.
  const credentialsSwitch = credentials.locator('input');
  if (!(await credentialsSwitch.isChecked())) await credentialsSwitch.press('Space');
  if (!(await credentialsSwitch.isChecked())) {
    throw new PageError('"Include cross-origin credentials" did not switch on');
  }
  await page.getByTestId('confirm-data-encoder-button').press('Enter');
  await page.getByTestId('data-encoder-title').waitFor({ state: 'hidden', timeout: ELEMENT_MS });
}

/** The cluster-level endpoint the UI was started with (`--ui-codec-endpoint`), or ''. */
async function clusterCodecEndpoint(page) {
  await openCodecDialog(page);
  const accordion = page.getByTestId('override-accordion').getByRole('button').first();
  const shown = (await accordion.innerText()).trim();
  await page.getByTestId('cancel-data-encoder-button').press('Enter');
  await page.getByTestId('data-encoder-title').waitFor({ state: 'hidden', timeout: ELEMENT_MS });
  const match = shown.match(/https?:\/\/\S+/);
  return match ? match[0] : '';
}

// -- the run page ---------------------------------------------------------------------

function inputSection(page) {
  return page.locator('div:has(> h2:text-is("Input"))');
}

async function text(locator) {
  return (await locator.first().innerText()).trim();
}

/** Texts of the markdown panels (Summary, Current Details), which the UI renders in iframes. */
async function renderedPanels(page) {
  const texts = [];
  for (const frame of page.frames()) {
    if (frame === page.mainFrame() || !frame.url().includes('/render')) continue;
    texts.push((await frame.locator('body').innerText().catch(() => '')).trim());
  }
  return texts;
}

async function main() {
  const args = options();
  const out = args.out;
  mkdirSync(out, { recursive: true });
  const ids = [args['workflow-id'], args['run-id']].map(encodeURIComponent);
  const runUrl = `${args.ui}/namespaces/default/workflows/${ids[0]}/${ids[1]}`;
  const decrypted = args.mode === 'decrypted';
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false, // --no-sandbox: the tests run as root
    args: CHROMIUM_ARGS, // Playwright adds a new empty --user-data-dir itself
  });
  const result = { mode: args.mode, runUrl, screenshots: {} };
  const page = await browser.newPage({ viewport: VIEWPORT });
  try {
    if (decrypted) {
      await signInToCodecServer(page, args['codec-endpoint'], process.env.CODEC_TOKEN);
    }

    await page.goto(runUrl);
    const title = page.locator('h1, h2').filter({ hasText: args['workflow-id'] });
    await visible(title, 'the run page\'s title (the workflow id)');
    result.historyUrl = page.url();
    result.clusterCodecEndpoint = await clusterCodecEndpoint(page);
    if (decrypted) {
      await useBrowserCodecSetting(page, args['codec-endpoint']);
      await page.reload();
    }

    // -- Input (History tab) -----------------------------------------------------------
    const input = await visible(inputSection(page), 'the "Input" section of the run page');
    const looksDone = decrypted
      ? (value) => value.includes(args.expect)
      : (value) => value.includes(ENCODING) || value.includes(ENCODING_BASE64);
    result.input = await poll(() => text(input), looksDone);
    result.header = await text(page.locator('header'));
    await input.scrollIntoViewIfNeeded();
    const inputShot = join(out, decrypted ? 'ui-run-input.png' : 'ui-run-input-encrypted.png');
    await input.screenshot({ path: inputShot });
    result.screenshots.input = inputShot;

    // -- what it waits for: the Event History, its timeline showing the pending timer ----
    const historyHeading = await visible(
      page.locator('h2:text-is("Event History")'),
      'the "Event History" section',
    );
    const history = historyHeading.locator('xpath=../..');
    const timerStarted = (value) => value.includes('Timer Started');
    result.eventHistory = await poll(() => text(history), timerStarted);
    if (decrypted) {
      // The heading at the top, just below the sticky top bar.
      await historyHeading.evaluate((element) => {
        element.style.scrollMarginTop = '90px';
        element.scrollIntoView({ block: 'start' });
      });
      const detailsShot = join(out, 'ui-run-details.png');
      await page.screenshot({ path: detailsShot });
      result.screenshots.details = detailsShot;
    }

    // -- Summary and Current Details (User Metadata tab) -------------------------------
    await page.goto(`${runUrl}/user-metadata`);
    for (const heading of ['Summary', 'Current Details']) {
      await visible(
        page.getByRole('heading', { name: heading, exact: true }),
        `the "${heading}" panel (User Metadata tab)`,
      );
    }
    // Decrypted: the current details arrive (WAITING ...). Encrypted: the UI has given
    // up decoding the summary, so what it shows is final.
    const metadata = await poll(
      async () => ({ panels: await renderedPanels(page), main: await text(page.locator('main')) }),
      decrypted
        ? (state) => state.panels.some((t) => t.includes('WAITING'))
        : (state) => /No summary available|Decoding failed/.test(state.main),
    );
    const panels = metadata.panels;
    result.renderedPanels = panels;
    result.metadataTab = metadata.main;
    if (decrypted) {
      const summaryShot = join(out, 'ui-run-summary.png');
      await page.screenshot({ path: summaryShot });
      result.screenshots.summary = summaryShot;
    }
    result.pageText = [result.input, result.eventHistory, result.metadataTab, ...panels].join('\n');
  } catch (error) {
    // What the page showed when it went wrong, for whoever reads the failure.
    await page.screenshot({ path: join(out, 'failure.png') }).catch(() => {});
    throw error;
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(result, null, 1) + '\n');
}

main().catch((error) => {
  const message = error instanceof PageError ? error.message : error.stack || String(error);
  process.stderr.write(`run_page: ${message}\n`);
  process.exit(1);
});
