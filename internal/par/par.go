// Package par runs independent work on every CPU.
package par

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Do runs f(0), …, f(n-1) on as many goroutines as there are CPUs and returns when all
// are done. f must be safe to call concurrently for different i.
func Do(n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		}()
	}
	wg.Wait()
}
