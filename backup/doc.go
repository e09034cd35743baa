// Package backup makes and reads Trove's backups: a consistent snapshot of
// the store as one .tar.zst.
//
// POST /admin/backup (Handler.Backup) takes a Pebble checkpoint (the WAL
// flushed first, sstables hard-linked) into a working directory
// <data>/.backup-* and streams it while ingest goes on. The working
// directory is removed when the response is done with, however it ended;
// one that a killed process left behind is removed at the next start.
//
// # Archive format (Format 1)
//
// A zstd stream (with its content checksum) of a tar archive:
//
//	manifest.json   {"format":1,"troveVersion","createdAt","watermark",
//	                 "files":[{"name":"store/NAME","size":N},…]}
//	store/          directory
//	store/NAME      the checkpoint's files, in the manifest's order
//
// The manifest comes first, so a reader knows what must follow: Restore
// and Verify accept only these entries, in this order, with these sizes,
// and only regular files with clean relative names (no absolute paths, no
// "..", no links). The watermark says which events the archive surely
// holds: every one stored at or below that ingest sequence.
//
// Restore extracts into a temporary directory and moves the store into
// place only once the whole archive has been read and checked, so that a
// damaged archive leaves nothing behind. The restored directory is a data
// directory that `trove serve -data DIR` opens as it is.
package backup
