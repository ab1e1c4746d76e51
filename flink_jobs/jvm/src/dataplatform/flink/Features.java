package dataplatform.flink;

import java.io.Serializable;
import java.util.List;

/**
 * Per-key features as of arrival, over a compact history of the key's recent events.
 *
 * <p>The history is one {@code byte[]} per key: a version byte, then the events sorted by time, each
 * {@code time (8 bytes)} plus its window columns (a decimal column as a 4-byte scaled integer, e.g.
 * cents; a code column as a 2-byte index into the field's values). One state read and one state write
 * per event, no timers; the changelog writes the array as it is, so a checkpoint costs what changed.
 *
 * <p>Semantics (the same as Spark's offline features whenever a key's events arrive in time order):
 * the event's own time {@code t} defines each window {@code (t - W, t]} over the key's events that have
 * arrived, the event itself included; the gap is {@code t} minus the latest earlier event's time, or -1
 * when there is none within the horizon. The history keeps events newer than the horizon plus the
 * allowed lateness behind the newest event (whose time counts at most {@code maxAhead} past the clock,
 * so one record stamped far in the future cannot evict a key's history), and at most
 * {@code maxEventsPerKey} events (the oldest go first: one abusive key cannot grow state without bound).
 */
public final class Features implements Serializable {
    private static final long serialVersionUID = 1L;
    static final byte VERSION = 1;
    static final int HEADER = 1;

    private final Spec spec;
    private final int[] columnWidth; // per history column: 4 (decimal) or 2 (code)
    private final int[] columnOffset; // within an entry, after the time
    private final int entrySize;
    private final int[] windowColumn; // per window: index of its history column, -1 for COUNT
    private final double[] windowDivisor; // SUM: 10^scale of the decimal column
    private final int[] distinctWords; // COUNT_DISTINCT: longs in the scratch bitset
    private final RecordSpec.Field[] columnFields;
    private transient long[] scratch;

    public Features(Spec spec) {
        this.spec = spec;
        List<String> columns = spec.historyColumns;
        columnWidth = new int[columns.size()];
        columnOffset = new int[columns.size()];
        columnFields = new RecordSpec.Field[columns.size()];
        int offset = 8;
        for (int c = 0; c < columns.size(); c++) {
            RecordSpec.Field field = spec.field(columns.get(c));
            columnFields[c] = field;
            columnWidth[c] = field.kind.equals("decimal") ? 4 : 2;
            columnOffset[c] = offset;
            offset += columnWidth[c];
        }
        entrySize = offset;
        windowColumn = new int[spec.windows.size()];
        windowDivisor = new double[spec.windows.size()];
        distinctWords = new int[spec.windows.size()];
        for (int w = 0; w < spec.windows.size(); w++) {
            Spec.Window window = spec.windows.get(w);
            windowColumn[w] = window.column == null ? -1 : columns.indexOf(window.column);
            if (window.function.equals("SUM")) {
                windowDivisor[w] = Math.pow(10, spec.field(window.column).scale);
            }
            if (window.function.equals("COUNT_DISTINCT")) {
                distinctWords[w] = (spec.field(window.column).values.size() + 63) / 64;
            }
        }
    }

    /** Bytes one stored event takes. */
    public int entrySize() {
        return entrySize;
    }

    /** Events held in {@code history}. */
    public int count(byte[] history) {
        return history == null ? 0 : (history.length - HEADER) / entrySize;
    }

    /** The history column values of {@code event} (scaled decimals, code indexes), in column order. */
    public long[] columns(Event event) {
        long[] values = new long[columnWidth.length];
        for (int c = 0; c < values.length; c++) {
            RecordSpec.Field field = columnFields[c];
            values[c] = field.kind.equals("decimal")
                    ? event.num[field.slot]
                    : field.index.get(event.text[field.slot]);
        }
        return values;
    }

    private long time(byte[] h, int i) {
        int p = HEADER + i * entrySize;
        return ((h[p] & 0xFFL) << 56) | ((h[p + 1] & 0xFFL) << 48) | ((h[p + 2] & 0xFFL) << 40)
                | ((h[p + 3] & 0xFFL) << 32) | ((h[p + 4] & 0xFFL) << 24) | ((h[p + 5] & 0xFFL) << 16)
                | ((h[p + 6] & 0xFFL) << 8) | (h[p + 7] & 0xFFL);
    }

    private long column(byte[] h, int i, int c) {
        int p = HEADER + i * entrySize + columnOffset[c];
        if (columnWidth[c] == 4) {
            return ((h[p] & 0xFF) << 24) | ((h[p + 1] & 0xFF) << 16) | ((h[p + 2] & 0xFF) << 8) | (h[p + 3] & 0xFF);
        }
        return ((h[p] & 0xFF) << 8) | (h[p + 1] & 0xFF);
    }

    private void writeEntry(byte[] h, int i, long t, long[] values) {
        int p = HEADER + i * entrySize;
        for (int b = 7; b >= 0; b--) {
            h[p + 7 - b] = (byte) (t >>> (8 * b));
        }
        for (int c = 0; c < values.length; c++) {
            int q = p + columnOffset[c];
            long v = values[c];
            if (columnWidth[c] == 4) {
                h[q] = (byte) (v >>> 24);
                h[q + 1] = (byte) (v >>> 16);
                h[q + 2] = (byte) (v >>> 8);
                h[q + 3] = (byte) v;
            } else {
                h[q] = (byte) (v >>> 8);
                h[q + 1] = (byte) v;
            }
        }
    }

    /** First index in [0, n) whose time is greater than {@code t} (n when none is). */
    private int upperBound(byte[] h, int n, long t) {
        int lo = 0;
        int hi = n;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (time(h, mid) <= t) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    /**
     * Fill {@code out} with the features of an event at {@code t} with window columns {@code values},
     * and return the key's new history (null when nothing is left to keep).
     *
     * @param clockMs the processing clock, only to bound how far a future-stamped event moves eviction
     */
    public byte[] update(byte[] history, long t, long[] values, long clockMs, double[] out) {
        int n = count(history);
        int at = history == null ? 0 : upperBound(history, n, t); // entries [0, at) are at or before t
        for (int w = 0; w < spec.windows.size(); w++) {
            Spec.Window window = spec.windows.get(w);
            long from = t - window.millis; // exclusive
            int lo = history == null ? 0 : upperBound(history, at, from);
            int c = windowColumn[w];
            switch (window.function) {
                case "COUNT":
                    out[w] = (at - lo) + 1;
                    break;
                case "SUM": {
                    long sum = values[c];
                    for (int i = lo; i < at; i++) {
                        sum += column(history, i, c);
                    }
                    out[w] = (double) sum / windowDivisor[w];
                    break;
                }
                case "COUNT_DISTINCT": {
                    long[] bits = scratch(distinctWords[w]);
                    int distinct = mark(bits, values[c]);
                    for (int i = lo; i < at; i++) {
                        distinct += mark(bits, column(history, i, c));
                    }
                    out[w] = distinct;
                    break;
                }
                default:
                    throw new IllegalStateException("unknown aggregate " + window.function);
            }
        }
        int gapIndex = spec.windows.size();
        long previousGap = at > 0 ? t - time(history, at - 1) : -1;
        out[gapIndex] = previousGap >= 0 && previousGap < spec.horizonMs ? (double) previousGap / 1000.0 : -1.0;

        // Evict by the newest time seen, bounded by the clock; keep the new event unless already too old.
        long newest = Math.max(t, n > 0 ? time(history, n - 1) : Long.MIN_VALUE);
        long reference = Math.min(newest, clockMs + spec.maxAheadMs);
        long cutoff = reference - spec.horizonMs - spec.allowedLatenessMs; // keep times > cutoff
        int keepFrom = history == null ? 0 : upperBound(history, n, cutoff);
        // An event at or before the cutoff is older than anything kept (it still got its features).
        boolean insert = t > cutoff;
        int before = insert ? at - keepFrom : 0; // kept old entries that precede the new one
        int kept = n - keepFrom + (insert ? 1 : 0);
        if (kept > spec.maxEventsPerKey) {
            // Drop the oldest of (kept old entries + the new one) down to the cap.
            int excess = kept - spec.maxEventsPerKey;
            if (excess <= before || !insert) {
                keepFrom += excess;
                before -= insert ? excess : 0;
            } else {
                keepFrom = at + (excess - before - 1);
                insert = false;
                before = 0;
            }
            kept = spec.maxEventsPerKey;
        }
        if (kept <= 0) {
            return null;
        }
        byte[] next = new byte[HEADER + kept * entrySize];
        next[0] = VERSION;
        if (!insert) {
            System.arraycopy(history, HEADER + keepFrom * entrySize, next, HEADER, kept * entrySize);
            return next;
        }
        if (before > 0) {
            System.arraycopy(history, HEADER + keepFrom * entrySize, next, HEADER, before * entrySize);
        }
        writeEntry(next, before, t, values);
        int after = kept - before - 1;
        if (after > 0) {
            System.arraycopy(history, HEADER + at * entrySize, next, HEADER + (before + 1) * entrySize,
                    after * entrySize);
        }
        return next;
    }

    private long[] scratch(int words) {
        if (scratch == null || scratch.length < words) {
            scratch = new long[Math.max(words, 4)];
        }
        java.util.Arrays.fill(scratch, 0, words, 0L);
        return scratch;
    }

    private static int mark(long[] bits, long index) {
        int word = (int) (index >>> 6);
        long bit = 1L << (index & 63);
        if ((bits[word] & bit) != 0) {
            return 0;
        }
        bits[word] |= bit;
        return 1;
    }
}
