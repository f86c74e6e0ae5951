// Browser tests: Debian's Chromium driven by Playwright (Playwright's own browser download is not used).
import { defineConfig } from '@playwright/test';

const port = Number(process.env.PORT ?? 8080);
const baseURL = `http://127.0.0.1:${port}`;

export default defineConfig({
  testDir: 'web/tests',
  outputDir: 'test-results',
  workers: 1,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  reporter: 'list',
  use: {
    baseURL,
    headless: true,
    browserName: 'chromium',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  webServer: {
    command: 'node scripts/serve.mjs',
    url: `${baseURL}/`,
    env: { PORT: String(port) },
    reuseExistingServer: false,
    timeout: 30_000,
  },
});
