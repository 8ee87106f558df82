/**
 * The last transformation before bytes reach the store: identity, or authenticated encryption
 * (encryption.ts). The object name is bound in, so an object moved or swapped is detected.
 */
export interface ObjectCodec {
  readonly encrypted: boolean;
  seal(plain: Buffer, objectName: string): Buffer;
  open(stored: Buffer, objectName: string): Buffer;
}

export const IDENTITY_CODEC: ObjectCodec = {
  encrypted: false,
  seal: (plain) => plain,
  open: (stored) => stored,
};
