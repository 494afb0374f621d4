package ml_analytics.spark;

import java.io.BufferedOutputStream;
import java.io.File;
import java.io.FileOutputStream;
import java.io.OutputStream;
import java.util.Collections;
import java.util.Iterator;

import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.unsafe.types.UTF8String;

/**
 * Writes one partition's rows (column 0: each row's JSON, from to_json) into a file of the executor's
 * local folders, one row per line, and hands the Python worker one record: "PATH\tROWS\tBYTES".
 * The file is removed when the task ends, whatever it ended of. Compiled on the driver by Janino
 * (which ships with Spark) and sent to executors with SparkContext.addJar: no JDK needed.
 */
public class PartitionSpool implements org.apache.spark.api.java.function.FlatMapFunction, java.io.Serializable {
    private static final long serialVersionUID = 1L;

    public Iterator call(Object input) throws Exception {
        Iterator rows = (Iterator) input;
        File file = (File) SparkEnv.get().blockManager().diskBlockManager().createTempLocalBlock()._2();
        TaskContext task = TaskContext.get();
        if (task != null) {
            task.addTaskCompletionListener(new Remover(file));
        }
        long count = 0;
        OutputStream out = new BufferedOutputStream(new FileOutputStream(file), 1 << 20);
        boolean done = false;
        try {
            while (rows.hasNext()) {
                InternalRow row = (InternalRow) rows.next();
                UTF8String json = row.getUTF8String(0);
                json.writeTo(out);
                out.write(10);
                count++;
            }
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
