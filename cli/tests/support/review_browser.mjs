// Drives Debian's chromium (playwright-core, headless) through the review page:
// node review_browser.mjs <page url with token> <proposal id> <xss text> <expect: refused|approved>
// Prints one JSON line with what it saw; exits 1 when a check fails.
import { chromium } from 'playwright-core'

const [url, id, xss, expect] = process.argv.slice(2)
const origin = new URL(url).origin
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu'],
})
const seen = { dialogs: 0, foreign: [], failures: [] }
const fail = (m) => seen.failures.push(m)
try {
  const page = await browser.newPage()
  page.on('dialog', async (d) => { seen.dialogs++; await d.dismiss() })
  page.on('request', (r) => { if (!r.url().startsWith(origin)) seen.foreign.push(r.url()) })
  await page.goto(url)
  if (page.url().includes('token=')) fail('the token stayed in the address bar')
  const row = page.locator('#proposals tbody tr', { hasText: id })
  await row.waitFor({ timeout: 10000 })
  await row.click()
  await page.locator('#story-view').waitFor({ state: 'visible' })
  const diff = await page.locator('#diff').innerText()
  if (!diff.includes('late_fee_cents')) fail('the diff does not show late_fee_cents: ' + diff)
  if (!diff.includes(xss)) fail('the reason is not shown as its characters: ' + diff)
  if ((await page.locator('#diff img').count()) > 0) fail('the reason became an element')
  const evidence = await page.locator('#evidence').innerText()
  if (!evidence.includes('evidence_bundle_id')) fail('no evidence shown')
  // Rejecting without a reason is refused, visibly.
  await page.click('#reject')
  await page.locator('#result.refused').waitFor({ timeout: 10000 })
  const noReason = await page.locator('#result').innerText()
  if (!/reason/.test(noReason)) fail('reject without a reason: ' + noReason)
  await page.click('#approve')
  if (expect === 'refused') {
    await page.locator('#result.refused', { hasText: 'lacks required role' }).waitFor({ timeout: 10000 })
    seen.result = await page.locator('#result').innerText()
  } else {
    await page.locator('#story-state', { hasText: 'is approved' }).waitFor({ timeout: 10000 })
    seen.result = await page.locator('#story-state').innerText()
  }
  await page.waitForTimeout(200)
} catch (e) {
  fail(String(e))
} finally {
  await browser.close()
}
if (seen.dialogs) fail(`${seen.dialogs} dialog(s) fired`)
if (seen.foreign.length) fail('requests to other hosts: ' + seen.foreign.join(', '))
console.log(JSON.stringify(seen))
process.exit(seen.failures.length ? 1 : 0)
