package ckg.neo4j;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.BoltConnectorInternalSettings;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;

/**
 * An embedded Neo4j 5 Community serving Bolt on 127.0.0.1, for ckg's tests.
 *
 * <p>Usage: {@code Launcher PORT DATA_DIR [PASSWORD]}. With a password, authentication is on and
 * the built-in {@code neo4j} user gets that password; without one, authentication is off. Prints
 * {@code READY bolt://127.0.0.1:PORT} once Bolt accepts connections, then serves until its
 * standard input closes or it receives SIGTERM, and shuts the database down cleanly either way.
 */
public final class Launcher {
    private static final String HOST = "127.0.0.1";

    private static DatabaseManagementService service;

    private Launcher() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 2 || args.length > 3) {
            System.err.println("usage: Launcher PORT DATA_DIR [PASSWORD]");
            System.exit(2);
        }
        int port = Integer.parseInt(args[0]);
        Path dir = Path.of(args[1]).toAbsolutePath();
        String password = args.length == 3 ? args[2] : null;

        long started = System.nanoTime();
        service = new DatabaseManagementServiceBuilder(dir)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress(HOST, port))
                .setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
                // Few Bolt threads: the tests use one or two sessions at a time on 2 cores.
                .setConfig(BoltConnector.thread_pool_min_size, 1)
                .setConfig(BoltConnector.thread_pool_max_size, 16)
                .setConfig(GraphDatabaseSettings.auth_enabled, password != null)
                // A test graph is small: a small page cache starts faster than the default
                // (half of free memory), and transaction logs need no 250 MB preallocation.
                // A benchmark's graph is not: -Dckg.pagecache=BYTES (bench/scale_bench.py).
                .setConfig(GraphDatabaseSettings.pagecache_memory,
                        Long.getLong("ckg.pagecache", 64L * 1024 * 1024))
                .setConfig(GraphDatabaseSettings.preallocate_logical_logs, false)
                .setConfig(GraphDatabaseSettings.preallocate_store_files, false)
                .setConfig(GraphDatabaseSettings.keep_logical_logs, "false")
                // Shutdown otherwise waits twice 5 s for Bolt connections and threads that a
                // test session has long closed.
                .setConfig(GraphDatabaseSettings.shutdown_transaction_end_timeout, Duration.ofSeconds(2))
                .setConfig(BoltConnectorInternalSettings.connection_shutdown_wait_time, Duration.ofMillis(200))
                .setConfig(BoltConnectorInternalSettings.thread_pool_shutdown_wait_time, Duration.ofMillis(200))
                .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0)
                .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_timeout, Duration.ofSeconds(1))
                .build();
        Runtime.getRuntime().addShutdownHook(new Thread(Launcher::shutdown, "ckg-neo4j-shutdown"));

        if (password != null) {
            // A new database's neo4j user has the password "neo4j", to be changed at first
            // login; the embedded API runs with full rights, so it sets the test password here.
            service.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME).executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED",
                    Map.of("password", password));
        }
        waitForBolt(port);
        long millis = (System.nanoTime() - started) / 1_000_000;
        System.out.println("READY bolt://" + HOST + ":" + port + " in " + millis + " ms");
        System.out.flush();

        drain(System.in);
        shutdown();
        System.exit(0);
    }

    /** Block until the Bolt port takes a TCP connection (it does once build() returned). */
    private static void waitForBolt(int port) throws InterruptedException {
        for (int attempt = 0; ; attempt++) {
            try (Socket socket = new Socket()) {
                socket.connect(new InetSocketAddress(HOST, port), 1000);
                return;
            } catch (IOException notYet) {
                if (attempt > 300) {
                    throw new IllegalStateException("Bolt never accepted connections on " + port);
                }
                Thread.sleep(100);
            }
        }
    }

    /** Read standard input until it closes: the parent process ended or let go of us. */
    private static void drain(InputStream in) {
        byte[] buffer = new byte[256];
        try {
            while (in.read(buffer) >= 0) {
                // Input is ignored; only its end matters.
            }
        } catch (IOException closed) {
            // A broken stdin means the parent is gone: shut down as on EOF.
        }
    }

    private static synchronized void shutdown() {
        if (service != null) {
            service.shutdown();
            service = null;
            System.err.println("ckg-neo4j: shut down");
        }
    }
}
