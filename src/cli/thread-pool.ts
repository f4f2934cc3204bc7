/**
 * The size of libuv's thread pool in a shadowfs process. Every file operation of the mount runs
 * on it; 4 threads (libuv's default) would cap parallel I/O well below what several application
 * threads ask for. A hung device holds the threads of its ops: the live volume's take at most 8
 * (LiveGuard), each tier's at most TIER_IO_SLOTS (8), so with four tiers hung, 8 threads are still
 * free for everything else.
 *
 * bin/shadowfs sets UV_THREADPOOL_SIZE to this unless it is set already. The pool starts at its
 * first use, so that works only if no preload (NODE_OPTIONS=--import ...) used it first: with one,
 * set UV_THREADPOOL_SIZE in the environment.
 */
export const LIBUV_POOL_THREADS = 48;
