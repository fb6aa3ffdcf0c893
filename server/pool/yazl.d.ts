// Types for the part of yazl (https://github.com/thejoshwolfe/yazl) the workspace download uses;
// yazl ships none, and the project adds no @types package for it.
declare module 'yazl' {
  import type { Readable } from 'node:stream';

  export interface EntryOptions {
    mtime?: Date;
    mode?: number;
    compress?: boolean;
    size?: number;
  }

  export class ZipFile {
    readonly outputStream: Readable;
    addBuffer(buffer: Buffer, metadataPath: string, options?: EntryOptions): void;
    addReadStreamLazy(metadataPath: string, options: EntryOptions, getReadStream: (cb: (err: Error | null, stream?: Readable) => void) => void): void;
    addEmptyDirectory(metadataPath: string, options?: { mtime?: Date; mode?: number }): void;
    end(options?: Record<string, unknown>, calculatedTotalSizeCallback?: (size: number) => void): void;
    on(event: 'error', listener: (err: Error) => void): this;
  }
}
