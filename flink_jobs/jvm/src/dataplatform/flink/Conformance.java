package dataplatform.flink;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.HashMap;
import java.util.Map;

/**
 * The job's own classes over records from stdin, for the Python conformance tests (no Flink runtime):
 *
 * <pre>
 * java -cp &lt;jar&gt; dataplatform.flink.Conformance &lt;spec.json&gt; [&lt;model.json&gt;]
 * </pre>
 *
 * Each input line is {@code <now_ms> <base64 record>}; records are taken in arrival order with one
 * history per key, as the keyed operator keeps them (the clock that bounds eviction is {@code now_ms}).
 * Each output line is {@code {"dead_letter": {...}}} or {@code {"decision": {...}, "alert": {...}|null}}
 * with {@code scored_at} 0 (the records' only non-deterministic field).
 */
public final class Conformance {
    private Conformance() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 1 || args.length > 2) {
            System.err.println("usage: Conformance <spec.json> [<model.json>]");
            System.exit(2);
        }
        Spec spec = new Spec(Files.readString(Path.of(args[0]), StandardCharsets.UTF_8));
        Model model = args.length == 2 ? Model.parse(Files.readString(Path.of(args[1]), StandardCharsets.UTF_8)) : null;
        RecordParser parser = new RecordParser(spec.record);
        Features features = new Features(spec);
        Scorer scorer = new Scorer(spec);
        Map<String, byte[]> histories = new HashMap<>();
        double[] values = new double[spec.featureNames.size()];
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        long offset = 0;
        for (String line; (line = in.readLine()) != null; offset++) {
            int space = line.indexOf(' ');
            long now = Long.parseLong(line.substring(0, space));
            byte[] raw = Base64.getDecoder().decode(line.substring(space + 1));
            Event event = new Event(spec.textSlots, spec.numSlots);
            String reason = parser.parse(raw, now, event);
            if (reason != null) {
                byte[] letter = Records.deadLetter(raw, reason, "conformance", 0, offset, 0);
                out.print("{\"dead_letter\":");
                out.print(new String(letter, StandardCharsets.UTF_8));
                out.println("}");
                continue;
            }
            event.topic = "conformance";
            event.offset = offset;
            String key = event.text[spec.key.slot];
            byte[] next = features.update(histories.get(key), event.num[spec.time.slot], features.columns(event), now,
                    values);
            if (next == null) {
                histories.remove(key);
            } else {
                histories.put(key, next);
            }
            Scorer.Result result = scorer.score(values, event, model);
            out.print("{\"decision\":");
            out.print(new String(Records.decision(spec, event, values, result, 0), StandardCharsets.UTF_8));
            out.print(",\"alert\":");
            out.print(result.score >= spec.reviewThreshold
                    ? new String(Records.alert(spec, event, result, 0), StandardCharsets.UTF_8)
                    : "null");
            out.print(",\"history_events\":");
            out.print(features.count(next));
            out.println("}");
        }
        out.flush();
    }
}
