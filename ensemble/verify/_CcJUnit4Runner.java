// Runs ONE JUnit 4 test method (class and method from argv) in this JVM and ends it with the verdict as its exit
// status: 0 passed, 1 failed, 3 ignored, 2 anything else (no such test, more than one run). Compiled with the
// project's sources by ensemble/verify/java_project.py; the harness reads the exit status from waitpid.
import org.junit.runner.JUnitCore;
import org.junit.runner.Request;
import org.junit.runner.Result;

public final class CcJUnit4Runner {
    private CcJUnit4Runner() {}

    public static void main(String[] args) throws Exception {
        Class<?> type = Class.forName(args[0], false, CcJUnit4Runner.class.getClassLoader());
        Result result = new JUnitCore().run(Request.method(type, args[1]));
        int code = 2;
        if (result.getFailureCount() > 0) {
            code = 1;
        } else if (result.getRunCount() == 1 && result.wasSuccessful()) {
            code = 0;
        } else if (result.getRunCount() == 0 && result.getIgnoreCount() == 1) {
            code = 3;
        }
        System.out.flush();
        // halt: no shutdown hook or thread the code under test started runs after the verdict.
        Runtime.getRuntime().halt(code);
    }
}
