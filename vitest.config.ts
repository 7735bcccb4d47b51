import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start real QEMU guests (TCG among them), namespaces and libvirtd, and
    // measure time: on two cores, two such files at once change what they measure. One at a time.
    fileParallelism: false,
    maxWorkers: 1,
    globalSetup: ['test/global-setup.ts'],
  },
});
