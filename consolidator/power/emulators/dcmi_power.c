/*
 * ipmi_sim plugin (loadlib): answers DCMI Get Power Reading (netfn 0x2C, cmd 0x02, group 0xDC) with
 * the watts written as ASCII in the file named by the plugin's options string. Stock ipmi_sim has no
 * DCMI (completion code 0xC1), so without this a real BMC's most common power reading cannot be tested.
 * Other DCMI commands still answer 0xC1 (invalid command). Built by consolidator.power.emulators.ipmi_sim.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <OpenIPMI/serv.h>
#include <OpenIPMI/mcserv.h>

#define DCMI_GROUP 0xdc
#define DCMI_GET_POWER_READING 0x02

static char watts_path[1024];

static unsigned int read_watts(int *ok)
{
    FILE *f = fopen(watts_path, "r");
    double w = 0;
    *ok = f != NULL && fscanf(f, "%lf", &w) == 1 && w >= 0 && w < 65535;
    if (f)
        fclose(f);
    return *ok ? (unsigned int) (w + 0.5) : 0;
}

static void put16(unsigned char *p, unsigned int v) { p[0] = v & 0xff; p[1] = (v >> 8) & 0xff; }

static void put32(unsigned char *p, unsigned long v)
{
    put16(p, v & 0xffff);
    put16(p + 2, (v >> 16) & 0xffff);
}

static void dcmi_handler(lmc_data_t *mc, msg_t *msg, unsigned char *rdata, unsigned int *rdata_len,
                         void *cb_data)
{
    int ok;
    unsigned int w;
    if (msg->cmd != DCMI_GET_POWER_READING || msg->len < 4) {
        rdata[0] = 0xc1; /* invalid command */
        *rdata_len = 1;
        return;
    }
    w = read_watts(&ok);
    if (!ok) {
        rdata[0] = 0xcb; /* requested data not present: no reading yet */
        *rdata_len = 1;
        return;
    }
    rdata[0] = 0x00;
    rdata[1] = DCMI_GROUP;
    put16(rdata + 2, w); /* current */
    put16(rdata + 4, w); /* minimum over the period */
    put16(rdata + 6, w); /* maximum */
    put16(rdata + 8, w); /* average */
    put32(rdata + 10, (unsigned long) time(NULL));
    put32(rdata + 14, 1000); /* statistics period, ms */
    rdata[18] = 0x40; /* power measurement active */
    *rdata_len = 19;
}

int ipmi_sim_module_print_version(sys_data_t *sys, char *options)
{
    printf("consolidator dcmi_power 1.0\n");
    return 0;
}

int ipmi_sim_module_init(sys_data_t *sys, const char *options)
{
    snprintf(watts_path, sizeof watts_path, "%s", options ? options : "");
    ipmi_emu_register_group_extension_handler(DCMI_GROUP, dcmi_handler, NULL);
    return 0;
}
