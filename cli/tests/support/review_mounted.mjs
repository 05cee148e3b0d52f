// The review screens mounted inside a host app, in Debian's chromium: the app's login is a
// bearer header here (sent with every request of the page).
// node review_mounted.mjs <page url> <authorization header> <ids listed (JSON)> <ids not listed (JSON)>
import { chromium } from 'playwright-core'

const [url, authorization, listed, hidden] = process.argv.slice(2)
const want = JSON.parse(listed)
const notWant = JSON.parse(hidden)
const origin = new URL(url).origin
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu'],
})
const seen = { dialogs: 0, foreign: [], failures: [], rows: [] }
const fail = (m) => seen.failures.push(m)
try {
  const context = await browser.newContext({ extraHTTPHeaders: { authorization } })
  const page = await context.newPage()
  page.on('dialog', async (d) => { seen.dialogs++; await d.dismiss() })
  page.on('request', (r) => { if (!r.url().startsWith(origin)) seen.foreign.push(r.url()) })
  await page.goto(url)
  await page.selectOption('#state', '')
  await page.click('#filters button')
  if (want.length) {
    await page.locator('#proposals tbody tr', { hasText: want[0] }).waitFor({ timeout: 10000 })
  } else {
    await page.locator('#empty').waitFor({ state: 'visible', timeout: 10000 })
  }
  seen.rows = await page.locator('#proposals tbody tr td:first-child').allInnerTexts()
  for (const id of want) if (!seen.rows.includes(id)) fail(`${id} is not listed`)
  for (const id of notWant) if (seen.rows.includes(id)) fail(`${id} is listed`)
  if (want.length) {
    await page.locator('#proposals tbody tr', { hasText: want[0] }).click()
    await page.locator('#story-view').waitFor({ state: 'visible' })
    const diff = await page.locator('#diff tbody').innerText()
    if (!diff.trim()) fail('the story shows no diff')
  }
} catch (e) {
  fail(String(e))
} finally {
  await browser.close()
}
if (seen.dialogs) fail(`${seen.dialogs} dialog(s) fired`)
if (seen.foreign.length) fail('requests to other hosts: ' + seen.foreign.join(', '))
console.log(JSON.stringify(seen))
process.exit(seen.failures.length ? 1 : 0)
