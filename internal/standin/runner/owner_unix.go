//go:build unix

package main

import (
	"io/fs"
	"syscall"
)

func owner(fi fs.FileInfo) (nlink uint64, uid, gid uint32) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink), st.Uid, st.Gid
	}
	return 1, 0, 0
}
