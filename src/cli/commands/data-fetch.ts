/** `sparse-proxskip data fetch cifar10`: download CIFAR-10 into DATA_DIR/cifar10, checksum-verified. */
import type { Command } from 'commander';
import { defaultDataDir } from '../../data/index.js';
import { CIFAR10_MD5, CIFAR10_URL, fetchCifar10 } from '../../data/fetch.js';
import { createProgress, type Progress } from '../../report/progress.js';
import { UsageError } from '../../errors.js';

/** Adds `fetch` to the `data` command. */
export function registerDataFetch(data: Command): void {
  data
    .command('fetch')
    .description('download a dataset into DATA_DIR: cifar10 (the official binary archive, 163 MiB, checksum-verified)')
    .argument('<dataset>', 'cifar10')
    .option('--data-dir <dir>', 'where DATA_DIR/cifar10 goes (default: ../shared/data if it exists, else ./data)')
    .option('--url <url>', 'download from here instead', CIFAR10_URL)
    .option('--md5 <hex>', `expected md5 of the archive (default: the published ${CIFAR10_MD5}, unless --sha256 is given)`)
    .option('--sha256 <hex>', 'expected sha256 of the archive')
    .option('--force', 'replace an existing DATA_DIR/cifar10')
    .action(async (name: string, o: { dataDir?: string; url: string; md5?: string; sha256?: string; force?: boolean }) => {
      if (name !== 'cifar10') throw new UsageError(`data fetch knows cifar10 only, not '${name}'`);
      const dataDir = o.dataDir ?? defaultDataDir();
      let progress: Progress | null = null;
      let r: Awaited<ReturnType<typeof fetchCifar10>>;
      try {
        r = await fetchCifar10(dataDir, {
          url: o.url,
          ...(o.md5 !== undefined ? { md5: o.md5 } : {}),
          ...(o.sha256 !== undefined ? { sha256: o.sha256 } : {}),
          ...(o.force ? { force: true } : {}),
          onProgress: (received, total) => {
            if (total === null) return; // no length from the server: no bar
            // in whole MB: the bar counts units
            progress ??= createProgress({ total: Math.ceil(total / 1e6), label: 'cifar10 MB' });
            progress.update(Math.floor(received / 1e6));
          },
        });
      } finally {
        (progress as Progress | null)?.stop();
      }
      if (!r.downloaded) console.log(`cifar10 is already in ${r.dir} (pass --force to download it again)`);
      else console.log(`cifar10: ${(r.bytes / 1e6).toFixed(1)} MB, md5 ${r.md5}, sha256 ${r.sha256} -> ${r.dir}`);
    });
}
