// Drive `loom web` in headless Chromium (playwright-core) and report what the page's terminal received.
// usage: node web_shot.cjs URL OUT_DIR MARKS_JSON   (env PLAYWRIGHT_CORE = path of the playwright-core package,
// CHROMIUM = the browser binary). MARKS_JSON = {"fleet": [...], "project": [...]}: text expected on each view.
// Prints one JSON line: {firstByte, fleet, project, pixelsChanged, missing, shots}.
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

const [url, outDir, marksJson] = process.argv.slice(2);
const marks = JSON.parse(marksJson);
const ARGS = ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking',
              '--disable-component-update', '--disable-sync', '--no-first-run'];
const ANSI = /\x1b\[[0-9;?<>=!]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[PX^_][\s\S]*?\x1b\\|\x1b[()][0-9A-Za-z]|\x1b[=>78]/g;

(async () => {
  const result = { firstByte: false, fleet: false, project: false, pixelsChanged: false, missing: [], shots: [] };
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 720 } });
    const origin = new URL(url).origin;
    // offline: the page's only outside request (a web font) is refused at once instead of timing out
    await page.route('**/*', (route) => (route.request().url().startsWith(origin) ? route.continue() : route.abort()));
    const chunks = [];
    page.on('websocket', (ws) => ws.on('framereceived', (f) => chunks.push(Buffer.from(f.payload))));
    const screen = (from) => Buffer.concat(chunks.slice(from)).toString('utf8').replace(ANSI, '');
    const waitFor = async (from, texts, ms) => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        const seen = screen(from);
        if (texts.every((t) => seen.includes(t))) return true;
        await page.waitForTimeout(100);
      }
      const seen = screen(from);
      result.missing.push(...texts.filter((t) => !seen.includes(t)));
      return false;
    };

    await page.goto(url, { waitUntil: 'domcontentloaded' });
    result.firstByte = await page.waitForSelector('body.-first-byte', { timeout: 30000 }).then(() => true, () => false);
    result.fleet = await waitFor(0, marks.fleet, 30000);
    await page.waitForTimeout(1500); // let the last frames paint
    const fleetShot = `${outDir}/web.png`;
    const before = await page.screenshot({ path: fleetShot });
    result.shots.push(fleetShot);

    const mark = chunks.length;
    await page.focus('.xterm-helper-textarea');
    await page.keyboard.press('Enter');
    result.project = await waitFor(mark, marks.project, 20000);
    await page.waitForTimeout(1500);
    const projectShot = `${outDir}/web-project.png`;
    const after = await page.screenshot({ path: projectShot });
    result.shots.push(projectShot);
    result.pixelsChanged = !before.equals(after);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(result));
})().catch((err) => {
  console.log(JSON.stringify({ error: String(err && err.stack || err) }));
  process.exit(1);
});
