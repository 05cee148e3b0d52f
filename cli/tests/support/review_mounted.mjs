// The review screens mounted inside a host app, in Debian's chromium: the app's login is a
// bearer header here (sent with every request of the page).
// node review_mounted.mjs <page url> <authorization header> <ids listed (JSON)> <ids not listed (JSON)>
import { inChromium } from './browser.mjs'

const [url, authorization, listed, hidden] = process.argv.slice(2)
const want = JSON.parse(listed)
const notWant = JSON.parse(hidden)
await inChromium(url, { headers: { authorization } }, async (page, fail, seen) => {
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
    if (!(await page.locator('#diff tbody').innerText()).trim()) fail('the story shows no diff')
  }
})
