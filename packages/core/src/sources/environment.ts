import type { SrcinfoGenerator } from '../contracts/source.js';
import type { Logger } from '../logger.js';
import type { AurClient } from './aur-client.js';
import type { Git } from './git.js';

/** The default GitHub mirror of the AUR: one branch per pkgbase. */
export const DEFAULT_AUR_GITHUB_MIRROR_URL = 'https://github.com/archlinux/aur';

/** What sources use from outside, shared by all sources of one factory. */
export interface SourceEnvironment {
  aur: AurClient;
  git: Git;
  /** `.SRCINFO` generation in an isolated environment */
  generateSrcinfo: SrcinfoGenerator;
  /** the build architecture (`ARCH`): which `source_<arch>` entries devel lookups follow */
  arch: string;
  /** `AUR_GITHUB_MIRROR`: AUR sources use the mirror's branches instead of the AUR */
  githubMirror: boolean;
  /** the mirror's git URL */
  githubMirrorUrl: string;
  logger: Logger;
}
