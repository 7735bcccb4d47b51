/**
 * The git revision the build was made from. `npm run build` writes dist/build-info.js over this
 * module's output with the revision of `git rev-parse --short HEAD` (or $LIVEMIG_REVISION;
 * "unknown" without git). Null here in the sources: src/version.ts then asks git itself.
 */
export const BUILD_REVISION: string | null = null;
