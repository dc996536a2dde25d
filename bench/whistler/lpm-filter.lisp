;;;; lpm-filter.lisp -- per-prefix rules for IPv4 sources, looked up in an LPM trie.
;;;; The longest prefix holding the source address decides: its rule counts the packet and
;;;; drops it when its action is 1; addresses no rule covers are counted in `misses` and pass.
;;;; Benchmark twin: bench/c/lpm_filter.c.

(in-package #:whistler)

(defstruct v4-prefix
  (prefixlen u32)           ; bits of addr that count
  (addr      u32))          ; network byte order

(defstruct rule
  (hits   u64)
  (action u32)              ; 1: drop, otherwise pass
  (pad    u32))

(defmap rules :type :lpm-trie :key-size 8 :value-type rule :max-entries 1024 :map-flags 1)
(defmap misses :type :array :key-size 4 :value-size 8 :max-entries 1)

(defprog lpm-filter ()
  (with-ipv4 (data data-end ip)
    (let ((key (make-v4-prefix)))
      (setf (v4-prefix-prefixlen key) 32
            (v4-prefix-addr key) (ipv4-src-addr ip))
      (let ((r (map-lookup-ptr rules key)))
        (if r
            (progn
              (atomic-add r 0 1)
              (when (= (rule-action r) 1)
                (return XDP_DROP)))
            (incf (getmap misses 0))))))
  XDP_PASS)
