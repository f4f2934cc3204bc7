/**
 * Which failed operations say something about the volume's health. ENOENT, EEXIST, EACCES and
 * the like are correct answers of a healthy volume to a bad request; only these count as
 * failures (recordOp's ok=false).
 */
const VOLUME_FAULT_CODES: ReadonlySet<string> = new Set([
  'EIO', 'ETIMEDOUT', 'ENOTCONN', 'ESTALE', 'EHOSTDOWN', 'EHOSTUNREACH', 'ENETDOWN', 'ENETUNREACH',
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EREMOTEIO', 'ENOLINK', 'ECOMM', 'EPROTO', 'EBADMSG', 'EUCLEAN',
  'ENOSPC', 'EDQUOT', 'EROFS', 'ENXIO', 'ENODEV', 'ENOMEDIUM',
]);

/** True for an errno name (EIO, ...) that means the volume is unwell rather than the request wrong. */
export function isVolumeFault(code: string | undefined): boolean {
  return code !== undefined && VOLUME_FAULT_CODES.has(code);
}
