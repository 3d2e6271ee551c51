#ifndef CONDUIT_SEARCH_KERNELS_H
#define CONDUIT_SEARCH_KERNELS_H

// The one thing Swift cannot say: a cache prefetch hint. The HNSW walk asks for the next
// neighbour's vector while it scores the current one, as hnswlib does; the call inlines into a
// single prefetcht0 instruction.
static inline void conduit_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

#endif
