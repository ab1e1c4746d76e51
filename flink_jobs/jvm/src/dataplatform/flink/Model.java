package dataplatform.flink;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A logistic-regression model read from the file registry that Spark's training writes
 * ({@code <root>/<version>/model.json}, champion named by {@code <root>/champion.json}).
 *
 * <p>Scores exactly as {@code hybrid_platform.model}: the standardisation is folded into the weights in
 * the artifact's input order, inputs with a zero std or coefficient are skipped, and the margin is summed
 * in the same order, so both languages add the same doubles in the same sequence.
 */
public final class Model {
    private static final Pattern VERSION = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");

    public final String version;
    public final String featureSpecVersion;
    public final double threshold;
    final double bias;
    final String[] names; // inputs with a weight, in artifact order
    final double[] weights;

    private Model(String version, String featureSpecVersion, double threshold, double bias, String[] names,
            double[] weights) {
        this.version = version;
        this.featureSpecVersion = featureSpecVersion;
        this.threshold = threshold;
        this.bias = bias;
        this.names = names;
        this.weights = weights;
    }

    /** Parse and check an artifact; a problem is an {@link IOException} with one line saying what. */
    public static Model parse(String text) throws IOException {
        Map<String, Object> doc;
        try {
            doc = Spec.map(Json.parse(text));
        } catch (Json.SyntaxError | Json.DuplicateKey | IllegalArgumentException e) {
            throw new IOException("model artifact is not a JSON object: " + e.getMessage());
        }
        try {
            if (!"1".equals(String.valueOf(doc.get("format_version")))) {
                throw new IOException("format_version " + doc.get("format_version") + " is not supported");
            }
            if (!"logistic_regression".equals(doc.get("kind"))) {
                throw new IOException("kind " + doc.get("kind") + " is not supported");
            }
            String version = Spec.str(doc, "model_version");
            List<String> names = Spec.strings(doc.get("feature_names"));
            Map<String, Object> parameters = Spec.map(doc.get("parameters"));
            double[] means = numbers(parameters.get("means"), names.size(), "means");
            double[] stds = numbers(parameters.get("stds"), names.size(), "stds");
            double[] coefficients = numbers(parameters.get("coefficients"), names.size(), "coefficients");
            double intercept = finite(parameters.get("intercept"), "intercept");
            double threshold = finite(doc.get("threshold"), "threshold");
            if (threshold < 0.0 || threshold > 1.0) {
                throw new IOException("threshold " + threshold + " is not between 0 and 1");
            }
            double bias = intercept;
            int used = 0;
            String[] keptNames = new String[names.size()];
            double[] keptWeights = new double[names.size()];
            for (int i = 0; i < names.size(); i++) {
                if (stds[i] < 0.0) {
                    throw new IOException("stds must not be negative");
                }
                if (stds[i] <= 0.0 || coefficients[i] == 0.0) {
                    continue; // constant in training, or dropped: contributes nothing
                }
                double weight = coefficients[i] / stds[i];
                keptNames[used] = names.get(i);
                keptWeights[used] = weight;
                used++;
                bias -= weight * means[i];
            }
            return new Model(version, Spec.str(doc, "feature_spec_version"), threshold, bias,
                    java.util.Arrays.copyOf(keptNames, used), java.util.Arrays.copyOf(keptWeights, used));
        } catch (IllegalArgumentException | ClassCastException | NullPointerException e) {
            throw new IOException("model artifact is malformed: " + e.getMessage());
        }
    }

    private static double finite(Object value, String name) throws IOException {
        if (!(value instanceof Json.Num)) {
            throw new IOException(name + " is not a number");
        }
        double d = Double.parseDouble(((Json.Num) value).literal);
        if (!Double.isFinite(d)) {
            throw new IOException(name + " is not finite");
        }
        return d;
    }

    private static double[] numbers(Object value, int expected, String name) throws IOException {
        if (!(value instanceof List)) {
            throw new IOException(name + " is not a list");
        }
        List<?> list = (List<?>) value;
        if (list.size() != expected) {
            throw new IOException(list.size() + " " + name + " for " + expected + " feature_names");
        }
        double[] out = new double[expected];
        for (int i = 0; i < expected; i++) {
            out[i] = finite(list.get(i), name);
        }
        return out;
    }

    /** The logistic function without overflow (as Python's {@code model.sigmoid}). */
    public static double sigmoid(double z) {
        if (z >= 0.0) {
            return 1.0 / (1.0 + Math.exp(-z));
        }
        double e = Math.exp(z);
        return e / (1.0 + e);
    }

    /** The registry's files: reads a champion when its pointer changed, never throws on bad files. */
    public static final class Registry {
        private final Path root;
        private final String expectedFeatureSpecVersion;
        private Object loadedSignature;
        public String lastError;

        public Registry(String root, String expectedFeatureSpecVersion) {
            this.root = Path.of(root);
            this.expectedFeatureSpecVersion = expectedFeatureSpecVersion;
        }

        /** The model {@code version} from the registry (a restore replays with the model it had). */
        public Model load(String version) throws IOException {
            if (!VERSION.matcher(version).matches()) {
                throw new IOException(version + " is not a model version");
            }
            Path path = root.resolve(version).resolve("model.json");
            Model model = parse(Files.readString(path, StandardCharsets.UTF_8));
            if (!model.version.equals(version)) {
                throw new IOException(path + " holds model " + model.version + ", not " + version);
            }
            if (!model.featureSpecVersion.equals(expectedFeatureSpecVersion)) {
                throw new IOException("model " + version + " was trained on features " + model.featureSpecVersion
                        + " but this job computes " + expectedFeatureSpecVersion);
            }
            return model;
        }

        /**
         * The champion when the pointer changed since the last call ({@code current} otherwise); a missing,
         * half-written or incompatible champion keeps {@code current} and sets {@link #lastError}.
         */
        public Model refresh(Model current) {
            Path pointer = root.resolve("champion.json");
            Object signature;
            try {
                BasicFileAttributes attributes = Files.readAttributes(pointer, BasicFileAttributes.class);
                signature = String.valueOf(attributes.fileKey()) + "/" + attributes.lastModifiedTime().toMillis()
                        + "/" + attributes.size();
            } catch (IOException e) {
                return current; // no champion yet (or it disappeared): keep scoring with what we have
            }
            if (signature.equals(loadedSignature)) {
                return current;
            }
            try {
                Map<String, Object> doc = Spec.map(Json.parse(Files.readString(pointer, StandardCharsets.UTF_8)));
                String version = Spec.str(doc, "model_version");
                Model next = current != null && current.version.equals(version) ? current : load(version);
                loadedSignature = signature;
                lastError = null;
                return next;
            } catch (Exception e) { // any bad file: keep the current model, retry at the next check
                lastError = "keeping " + (current == null ? "rules only" : current.version) + ": " + e.getMessage();
                return current;
            }
        }
    }
}
