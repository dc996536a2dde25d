;;;; score-bytes.lisp -- score the first 8 bytes after the Ethernet header with nested tests in
;;;; a loop (after the original Whistler's "deeply nested control flow inside a loop" test) and
;;;; publish the score. Benchmark twin: bench/c/score_bytes.c.

(in-package #:whistler)

(defmap scores :type :array :key-size 4 :value-size 8 :max-entries 1)

(defprog score-bytes (:type :xdp :section "xdp" :license "GPL")
  (with-packet (data data-end :min-len 22)
    (let ((score 0))
      (dotimes (i 8)
        (let ((b (load u8 data (+ 14 i))))
          (if (> b #x80)
              (if (> b #xc0)
                  (setf score (+ score 4))
                  (setf score (+ score 2)))
              (when (> b #x40)
                (setf score (+ score 1))))))
      (setf (getmap scores 0) score)))
  XDP_PASS)
