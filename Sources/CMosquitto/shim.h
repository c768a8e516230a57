#ifndef C_MOSQUITTO_SHIM_H
#define C_MOSQUITTO_SHIM_H
#include <mosquitto.h>
#endif
