/* peak_rss.c — see peak_rss.h. */
#include "tests/support/peak_rss.h"

#include <stdio.h>

double peak_rss_mb(void)
{
    long hwm_kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &hwm_kb) == 1)
            break;
    if (f)
        fclose(f);
    return hwm_kb / 1024.0;
}
