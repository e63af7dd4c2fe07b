// Opens pages of the built dashboard in a real headless Chromium (Debian's, driven by
// playwright-core) with every host but localhost unreachable, and reports what they show.
// Used by tests/test_dashboard.py:
//   node render-pages.mjs '{"chromium": "/usr/bin/chromium", "profile": "...",
//                           "pages": [{"url": "...", "screenshot": "...png", "waitFor": ".kpi-card",
//                                      "fullPage": true}]}'
// prints one JSON object: per page, the KPI cards (id, status, value text, colour), the rows
// of its KPI tables ({column: text}), the requests to other hosts (which must be none) and the
// page's console errors.
import { chromium } from 'playwright-core';

const options = JSON.parse(process.argv[2]);
const isLocal = (url) => {
	const { protocol, hostname } = new URL(url);
	return ['data:', 'blob:'].includes(protocol) || ['localhost', '127.0.0.1'].includes(hostname);
};

const context = await chromium.launchPersistentContext(options.profile, {
	executablePath: options.chromium,
	headless: true,
	viewport: { width: 1400, height: 1000 },
	args: [
		'--no-sandbox',
		'--disable-gpu',
		'--disable-quic',
		'--no-first-run',
		'--disable-background-networking',
		'--disable-component-update',
		'--disable-sync',
		// The network is off: no name resolves but localhost's.
		'--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost'
	]
});
const outsideRequests = [];
await context.route('**/*', (route) => {
	const url = route.request().url();
	if (isLocal(url)) return route.continue();
	outsideRequests.push(url);
	return route.abort('internetdisconnected');
});

const results = [];
for (const target of options.pages) {
	const page = await context.newPage();
	const errors = [];
	page.on('console', (message) => {
		if (message.type() === 'error') errors.push(message.text());
	});
	page.on('pageerror', (error) => errors.push(String(error)));
	await page.goto(target.url, { waitUntil: 'load', timeout: 60_000 });
	// The cards come once DuckDB-WASM has loaded the data and run the page's queries.
	if (target.waitFor) await page.waitForSelector(target.waitFor, { timeout: 60_000 });
	await page.waitForLoadState('networkidle', { timeout: 60_000 });
	const cards = await page.$$eval('.kpi-card', (elements) =>
		elements.map((card) => ({
			kpi_id: card.dataset.kpi,
			status: card.dataset.status,
			trust: card.dataset.trust,
			trust_text: card.querySelector('.kpi-trust').textContent.trim(),
			value: card.querySelector('.kpi-value').textContent.trim(),
			label: card.querySelector('.kpi-label').textContent.trim(),
			colour: getComputedStyle(card).borderLeftColor
		}))
	);
	const tables = await page.$$eval('.kpi-table', (elements) =>
		elements.map((table) =>
			Array.from(table.querySelectorAll('tbody tr')).map((row) =>
				Object.fromEntries(
					Array.from(row.querySelectorAll('td')).map((cell) => [
						cell.dataset.column,
						cell.textContent.trim()
					])
				)
			)
		)
	);
	const text = await page.evaluate(() => document.body.innerText);
	if (target.screenshot) {
		await page.screenshot({ path: target.screenshot, fullPage: target.fullPage ?? true });
	}
	results.push({ url: target.url, cards, tables, text, errors });
	await page.close();
}
await context.close();
console.log(JSON.stringify({ pages: results, outside_requests: outsideRequests }));
