package dataplatform.flink;

/**
 * A valid record on its way to the keyed operator: field values by slot, and where it came from.
 *
 * <p>A Flink POJO (public fields, no-argument constructor), so the one network hop serializes it with
 * Flink's own serializers instead of Kryo. Strings sit in {@link #text}, numbers in {@link #num}
 * (decimals as scaled integers, e.g. cents; times as epoch milliseconds; booleans as 0/1), each at the
 * field's {@link RecordSpec.Field#slot}.
 */
public class Event {
    public String[] text;
    public long[] num;
    public String topic;
    public int partition;
    public long offset;
    /** The input record's Kafka timestamp (the producer's send time): the start of the decision latency. */
    public long sourceTs;

    public Event() {}

    public Event(int textSlots, int numSlots) {
        text = new String[textSlots];
        num = new long[numSlots];
    }
}
