package ml_analytics.spark;

import java.io.BufferedOutputStream;
import java.io.File;
import java.io.FileOutputStream;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.Iterator;

import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.json.JSONOptions;
import org.apache.spark.sql.catalyst.json.JacksonGenerator;
import org.apache.spark.sql.types.DataType;

/**
 * Writes one partition's rows as JSON lines into a file of the executor's local folders and hands the
 * Python worker one record: "PATH\tROWS\tBYTES". The JSON is Spark's: the generator and options that
 * to_json and DataFrame.toJSON use (no line separator or option of ours), streamed into the file as
 * df.write.json does. The file is removed when the task ends, whatever it ended of. Compiled on the
 * driver by Janino (which ships with Spark) and sent to executors with SparkContext.addJar.
 */
public class PartitionSpool implements org.apache.spark.api.java.function.FlatMapFunction, java.io.Serializable {
    private static final long serialVersionUID = 2L;
    private DataType schema;
    private JSONOptions options;

    /** The rows' schema and the session's time zone, on the driver (as to_json resolves them). */
    public PartitionSpool configure(DataType schema, String timeZone) {
        this.schema = schema;
        this.options = new JSONOptions(scala.collection.immutable.Map$.MODULE$.empty(), timeZone, "");
        return this;
    }

    public Iterator call(Object input) throws Exception {
        Iterator rows = (Iterator) input;
        File file = (File) SparkEnv.get().blockManager().diskBlockManager().createTempLocalBlock()._2();
        TaskContext task = TaskContext.get();
        if (task != null) {
            task.addTaskCompletionListener(new Remover(file));
        }
        long count = 0;
        Writer out = new OutputStreamWriter(new BufferedOutputStream(new FileOutputStream(file), 1 << 20),
                                            StandardCharsets.UTF_8);
        JacksonGenerator json = new JacksonGenerator(schema, out, options);
        boolean done = false;
        try {
            while (rows.hasNext()) {
                json.write((InternalRow) rows.next());
                json.writeLineEnding();
                count++;
            }
            json.close();
            out.close();
            done = true;
        } finally {
            if (!done) {
                try { out.close(); } catch (Exception ignored) { }
                file.delete();
            }
        }
        String head = file.getPath() + "\t" + count + "\t" + file.length();
        return Collections.singletonList(head.getBytes("UTF-8")).iterator();
    }

    /** Removes a partition's spool file when its task ends (success, failure or kill). */
    public static class Remover implements org.apache.spark.util.TaskCompletionListener, java.io.Serializable {
        private static final long serialVersionUID = 1L;
        private final File file;

        public Remover(File file) {
            this.file = file;
        }

        public void onTaskCompletion(TaskContext context) {
            file.delete();
        }
    }
}
